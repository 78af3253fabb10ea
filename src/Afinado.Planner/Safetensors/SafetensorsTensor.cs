namespace Afinado.Planner.Safetensors;

/// <summary>One tensor entry of a safetensors header. Offsets are relative to the start of the data section.</summary>
public sealed record SafetensorsTensor(string Name, string Dtype, long[] Shape, long Begin, long End, string File)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    public long Bytes => End - Begin;
}

/// <summary>One parsed safetensors file: its tensors (in header order) and free-form <c>__metadata__</c>.</summary>
public sealed record SafetensorsFile(string Path, long FileBytes, long HeaderBytes, IReadOnlyList<SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata)
{
    public long DataBytes => FileBytes - 8 - HeaderBytes;
}
