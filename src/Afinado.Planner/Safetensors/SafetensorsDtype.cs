namespace Afinado.Planner.Safetensors;

/// <summary>The dtypes the safetensors format defines, with their width in bits (sub-byte types pack along the last axis).</summary>
public static class SafetensorsDtype
{
    private static readonly Dictionary<string, int> Bits = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 8, ["U8"] = 8, ["I8"] = 8, ["F8_E5M2"] = 8, ["F8_E4M3"] = 8, ["F8_E8M0"] = 8,
        ["I16"] = 16, ["U16"] = 16, ["F16"] = 16, ["BF16"] = 16,
        ["I32"] = 32, ["U32"] = 32, ["F32"] = 32,
        ["I64"] = 64, ["U64"] = 64, ["F64"] = 64, ["C64"] = 64,
        ["F4"] = 4, ["F6_E2M3"] = 6, ["F6_E3M2"] = 6,
    };

    public static IReadOnlyCollection<string> Known => Bits.Keys;

    /// <summary>Bits per element, or null for a name the format does not define.</summary>
    public static int? BitsOf(string dtype) => Bits.TryGetValue(dtype, out var b) ? b : null;
}
