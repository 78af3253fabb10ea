using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Afinado.Planner.Safetensors;

namespace Afinado.TestSupport;

/// <summary>
/// Writes real safetensors files for tests: u64 little-endian header length, JSON header with contiguous
/// data_offsets padded with spaces to 8 bytes (as the reference writer does), then the data section.
/// The data is left as a sparse zero-filled extent, so a checkpoint of a real model's shape costs no disk.
/// </summary>
public static class SafetensorsWriter
{
    public static byte[] Header(IEnumerable<(string Name, string Dtype, long[] Shape)> tensors, IDictionary<string, string>? metadata, out long dataBytes)
    {
        using var buffer = new MemoryStream();
        long offset = 0;
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var (name, dtype, shape) in tensors)
            {
                long bytes = shape.Aggregate(1L, (a, b) => a * b) * SafetensorsDtype.BitsOf(dtype)!.Value / 8;
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        dataBytes = offset;
        var json = buffer.ToArray();
        int padded = (json.Length + 7) / 8 * 8;
        var header = Enumerable.Repeat((byte)' ', padded).ToArray();
        json.CopyTo(header, 0);
        return header;
    }

    public static void Write(string path, IEnumerable<(string Name, string Dtype, long[] Shape)> tensors, IDictionary<string, string>? metadata = null)
    {
        var header = Header(tensors, metadata, out long dataBytes);
        WriteRaw(path, (ulong)header.Length, header, dataBytes);
    }

    /// <summary>Any length field, any header bytes, any data size: for hostile fixtures.</summary>
    public static void WriteRaw(string path, ulong declaredLength, byte[] header, long dataBytes)
    {
        using var f = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, declaredLength);
        f.Write(prefix);
        f.Write(header);
        f.SetLength(f.Length + dataBytes);
    }

    /// <summary>The whole file as bytes (small fixtures only), for byte-level mutation.</summary>
    public static byte[] Bytes(IEnumerable<(string Name, string Dtype, long[] Shape)> tensors, IDictionary<string, string>? metadata = null)
    {
        var header = Header(tensors, metadata, out long dataBytes);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    public static string Text(byte[] header) => Encoding.UTF8.GetString(header);
}
