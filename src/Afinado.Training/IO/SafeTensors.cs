using System.Buffers.Binary;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Planner.Safetensors;
using static TorchSharp.torch;

namespace Afinado.Training.IO;

/// <summary>
/// The safetensors format (Hugging Face): [u64 little-endian header length N][N bytes of JSON][raw little-endian data].
/// Header entries: <c>{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}}</c> plus an optional
/// <c>__metadata__</c> string map. Offsets are relative to the data section. Tensors are written C-contiguous, sorted by
/// name, and the header is space-padded to 8 bytes as the reference writer does.
/// </summary>
public static class SafeTensors
{
    private static readonly Dictionary<ScalarType, string> ToCode = new()
    {
        [ScalarType.Float64] = "F64", [ScalarType.Float32] = "F32", [ScalarType.Float16] = "F16", [ScalarType.BFloat16] = "BF16",
        [ScalarType.Int64] = "I64", [ScalarType.Int32] = "I32", [ScalarType.Int16] = "I16", [ScalarType.Int8] = "I8",
        [ScalarType.Byte] = "U8", [ScalarType.Bool] = "BOOL",
    };
    private static readonly Dictionary<string, ScalarType> FromCode = ToCode.ToDictionary(kv => kv.Value, kv => kv.Key);

    /// <summary>Writes the tensors to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                var t = tensors[name];
                long n = t.numel() * t.element_size();
                json.WriteStartObject(name);
                json.WriteString("dtype", ToCode.TryGetValue(t.dtype, out var code) ? code : throw new NotSupportedException($"{name}: dtype {t.dtype} has no safetensors code"));
                json.WriteStartArray("shape");
                foreach (var d in t.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + n);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += n;
            }
            json.WriteEndObject();
        }
        int pad = (int)((8 - buffer.Length % 8) % 8);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(buffer.Length + pad));
        stream.Write(len);
        buffer.Position = 0;
        buffer.CopyTo(stream);
        for (int i = 0; i < pad; i++) stream.WriteByte((byte)' ');
        foreach (var name in names)
        {
            using var t = tensors[name].detach().cpu().contiguous();
            stream.Write(t.bytes);
        }
    }

    /// <summary>Reads every tensor of a safetensors file (CPU tensors, the stored dtype).</summary>
    public static Dictionary<string, Tensor> Read(string path) => Read(path, out _);

    public static Dictionary<string, Tensor> Read(string path, out Dictionary<string, string> metadata)
    {
        // Weights named by a user's folder: a FIFO or device is refused before opening, and the header is bounded.
        using var fs = InputFile.Open(path, InputKind.SafetensorsFile);
        var header = ReadHeader(fs, path, out metadata);
        long dataStart = fs.Position;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var entry in header) result[entry.Name] = ReadTensor(fs, dataStart, entry, path);
        return result;
    }

    /// <summary>
    /// The tensors of a file one at a time, each disposed after <paramref name="use"/> returns: loading weights holds one
    /// tensor beside the model instead of a whole second copy of it. <paramref name="names"/> sees every name first (to
    /// check them against a model before any byte is read).
    /// </summary>
    public static void ReadEach(string path, Action<IReadOnlyCollection<string>> names, Action<string, Tensor> use)
    {
        using var fs = InputFile.Open(path, InputKind.SafetensorsFile);
        var header = ReadHeader(fs, path, out _);
        long dataStart = fs.Position;
        names(header.Select(e => e.Name).ToList());
        foreach (var entry in header)
        {
            using var t = ReadTensor(fs, dataStart, entry, path);
            use(entry.Name, t);
        }
    }

    /// <summary>One tensor's bytes, read from the data section into a new tensor of its dtype and shape.</summary>
    private static Tensor ReadTensor(Stream fs, long dataStart, Entry entry, string path)
    {
        var t = empty(entry.Shape, entry.DType);
        var dst = t.bytes;
        if (dst.Length != entry.End - entry.Begin)
        {
            t.Dispose();
            throw new InvalidDataException($"{path}: tensor {entry.Name} has {entry.End - entry.Begin} bytes for shape [{string.Join(",", entry.Shape)}] {entry.DType}");
        }
        fs.Position = dataStart + entry.Begin;
        fs.ReadExactly(dst);
        return t;
    }

    /// <summary>One header entry: name, dtype, shape and byte range inside the data section.</summary>
    public sealed record Entry(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    /// <summary>
    /// Reads only the header (names, dtypes, shapes), leaving the stream at the start of the data section. Parsing and
    /// validation (length limits, offsets, overlaps, dtype × shape sizes) are the planner's fuzzed
    /// <see cref="SafetensorsHeader"/>: one parser for <c>afinado inspect</c> and for loading weights.
    /// </summary>
    public static List<Entry> ReadHeader(Stream fs, string path, out Dictionary<string, string> metadata)
    {
        var file = SafetensorsHeader.Read(fs, InputFile.Describe(path));
        metadata = new Dictionary<string, string>(file.Metadata, StringComparer.Ordinal);
        var entries = new List<Entry>(file.Tensors.Count);
        foreach (var t in file.Tensors)
        {
            if (!FromCode.TryGetValue(t.Dtype, out var dtype))
                throw new InputError($"{path}: {t.Name}", $"has dtype {t.Dtype}, which the trainer cannot load",
                    $"Convert the checkpoint to one of {string.Join(", ", FromCode.Keys)} before training.");
            entries.Add(new Entry(t.Name, dtype, t.Shape, t.Begin, t.End));
        }
        return entries.OrderBy(e => e.Begin).ToList();
    }
}
