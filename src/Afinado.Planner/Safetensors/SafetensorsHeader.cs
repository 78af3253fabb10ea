using System.Buffers.Binary;
using System.Text.Json;
using Afinado.Planner.Inputs;

namespace Afinado.Planner.Safetensors;

/// <summary>
/// Reads and validates the header of a safetensors file without touching the tensor data:
/// 8 bytes little-endian header length N, then N bytes of UTF-8 JSON
/// <c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}</c>, then the data.
/// The checks mirror the reference (Rust) loader, so a file that passes here also loads there; anything else is an
/// <see cref="InputError"/> naming the file and the entry, never a crash or a silently wrong total.
/// </summary>
public static class SafetensorsHeader
{
    /// <summary>Largest header accepted (the reference implementation's limit): a hostile length cannot make us allocate more.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string Fix = "The file is truncated, corrupt or not a safetensors file; download it again.";

    public static SafetensorsFile Read(string path)
    {
        // File.Exists is true for any link (dangling, looping, to a device): InputFile.Open says which.
        if (!File.Exists(path))
            throw new InputError(InputFile.Describe(path), "does not exist", "Give a .safetensors file, a model.safetensors.index.json, or a folder holding them.");
        try
        {
            using var stream = InputFile.Open(path, InputKind.SafetensorsFile);
            // The real path: it is the file's identity (shard names are matched against it, weights are loaded from it);
            // messages are escaped where they are printed.
            return Read(stream, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputError(path, $"cannot be read ({e.Message})", "Check the path and its permissions.", e);
        }
    }

    /// <summary>Reads the header from a seekable stream (its Length is the file size) positioned at the file start; <paramref name="source"/> names it in errors.</summary>
    public static SafetensorsFile Read(Stream stream, string source)
    {
        long length = stream.Length;
        if (length < 8)
            throw new InputError(source, $"is {length} bytes, shorter than the 8-byte header length field", Fix);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong declared = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (declared > MaxHeaderBytes)
            throw new InputError(source, $"declares a {declared:N0}-byte header, over the {MaxHeaderBytes:N0}-byte limit", Fix);
        long headerBytes = (long)declared;
        if (8 + headerBytes > length)
            throw new InputError(source, $"declares a {headerBytes:N0}-byte header but the file has only {length - 8:N0} bytes after the length field", Fix);
        var header = new byte[headerBytes];
        stream.ReadExactly(header);
        var (tensors, metadata) = Parse(header, length - 8 - headerBytes, source);
        return new SafetensorsFile(source, length, headerBytes, tensors, metadata);
    }

    /// <summary>Parses header JSON and checks every entry against a data section of <paramref name="dataBytes"/> bytes.</summary>
    public static (IReadOnlyList<SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Parse(byte[] header, long dataBytes, string source)
    {
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new InputError($"{source}: header", "does not start with '{'", Fix);
        // Invalid UTF-8, lone surrogate escapes, duplicate names and out-of-range numbers: input errors before any entry is read.
        using (var doc = InputJson.Parse(header, $"{source}: header", InputKind.SafetensorsFile, maxDepth: 8))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InputError($"{source}: header", $"is a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object", Fix);
            var tensors = new List<SafetensorsTensor>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(entry.Name))
                    throw new InputError($"{source}: \"{Short(entry.Name)}\"", "appears twice in the header", Fix);
                if (entry.Name == "__metadata__")
                    ReadMetadata(entry.Value, metadata, source);
                else
                    tensors.Add(ReadTensor(entry.Name, entry.Value, dataBytes, source));
            }
            CheckLayout(tensors, dataBytes, source);
            return (tensors, metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InputError($"{source}: __metadata__", "must be an object of strings", Fix);
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new InputError($"{source}: __metadata__.{Short(m.Name)}", "must be a string", Fix);
            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static SafetensorsTensor ReadTensor(string name, JsonElement value, long dataBytes, string source)
    {
        string field = $"{source}: tensor \"{Short(name)}\"";
        if (value.ValueKind != JsonValueKind.Object)
            throw new InputError(field, "is not an object with dtype, shape and data_offsets", Fix);
        if (!value.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new InputError(field, "has no dtype string", Fix);
        string dtype = dt.GetString()!;
        int bits = SafetensorsDtype.BitsOf(dtype)
            ?? throw new InputError(field, $"has unknown dtype \"{Short(dtype)}\"", $"Known dtypes: {string.Join(", ", SafetensorsDtype.Known)}.");
        long[] shape = ReadLongs(value, "shape", field, null);
        long[] offsets = ReadLongs(value, "data_offsets", field, 2);
        long begin = offsets[0], end = offsets[1];
        if (begin > end)
            throw new InputError(field, $"data_offsets [{begin}, {end}] run backwards", Fix);
        if (end > dataBytes)
            throw new InputError(field, $"data_offsets end at {end:N0}, beyond the {dataBytes:N0}-byte data section", Fix);
        long expected;
        try
        {
            long elements = shape.Aggregate(1L, (a, b) => checked(a * b));
            long totalBits = checked(elements * bits);
            if (totalBits % 8 != 0)
                throw new InputError(field, $"has {elements:N0} {dtype} elements, which do not fill whole bytes", Fix);
            expected = totalBits / 8;
        }
        catch (OverflowException)
        {
            throw new InputError(field, $"has shape [{string.Join(", ", shape)}], too large to exist", Fix);
        }
        if (expected != end - begin)
            throw new InputError(field, $"is {dtype} [{string.Join(", ", shape)}] = {expected:N0} bytes but data_offsets span {end - begin:N0} bytes", Fix);
        return new SafetensorsTensor(name, dtype, shape, begin, end, source);
    }

    private static long[] ReadLongs(JsonElement value, string key, string field, int? count)
    {
        if (!value.TryGetProperty(key, out var arr) || arr.ValueKind != JsonValueKind.Array)
            throw new InputError(field, $"has no {key} array", Fix);
        int n = arr.GetArrayLength();
        if (count is not null && n != count)
            throw new InputError(field, $"{key} has {n} entries, expected {count}", Fix);
        if (n > 64)
            throw new InputError(field, $"{key} has {n} dimensions", Fix);
        var result = new long[n];
        int i = 0;
        foreach (var v in arr.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var x) || x < 0)
                throw new InputError(field, $"{key} holds {Short(v.GetRawText())}, not a non-negative integer", Fix);
            result[i++] = x;
        }
        return result;
    }

    /// <summary>Tensors must tile the data section exactly: no overlap (two names aliasing bytes), no gap, no trailing bytes.</summary>
    private static void CheckLayout(List<SafetensorsTensor> tensors, long dataBytes, string source)
    {
        long cursor = 0;
        SafetensorsTensor? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin < cursor)
                throw new InputError($"{source}: tensor \"{Short(t.Name)}\"", $"overlaps \"{Short(previous!.Name)}\" (bytes {t.Begin:N0}–{t.End:N0} vs {previous.Begin:N0}–{previous.End:N0})", Fix);
            if (t.Begin > cursor)
                throw new InputError($"{source}: tensor \"{Short(t.Name)}\"", $"starts at {t.Begin:N0}, leaving bytes {cursor:N0}–{t.Begin:N0} unused", Fix);
            cursor = t.End;
            previous = t;
        }
        if (cursor != dataBytes)
            throw new InputError($"{source}: data", $"section is {dataBytes:N0} bytes but the tensors cover {cursor:N0}", Fix);
    }

    internal static string Short(string s) => TerminalText.Escape(s.Length <= 80 ? s : s[..80] + "…");
}
