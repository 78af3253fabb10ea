using System.Globalization;
using System.Text.RegularExpressions;

namespace Afinado.Planner.Devices;

/// <summary>Parses and prints byte sizes. GB = 10⁹ and GiB = 2³⁰ are both accepted, and labelled on output.</summary>
public static partial class ByteSize
{
    public const double GiB = 1024.0 * 1024 * 1024;
    public const double MiB = 1024.0 * 1024;

    [GeneratedRegex(@"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex SizePattern();

    public static long Parse(string text, InputText field)
    {
        var m = SizePattern().Match(text ?? "");
        if (!m.Success)
            throw new InputError(field, $"\"{text}\" is not a size", "Write a number with a unit, e.g. 24GiB, 24GB or 16000MiB.");
        double value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        string unit = m.Groups[2].Success ? m.Groups[2].Value.ToUpperInvariant() : "";
        if (unit == "")
            throw new InputError(field, $"\"{text}\" has no unit", "Add GB (10⁹ bytes) or GiB (2³⁰ bytes), e.g. 24GiB.");
        double factor = unit switch
        {
            "B" => 1, "KB" => 1e3, "MB" => 1e6, "GB" => 1e9, "TB" => 1e12,
            "KIB" => 1024, "MIB" => MiB, "GIB" => GiB, "TIB" => GiB * 1024,
            _ => throw new InputError(field, $"unknown unit {unit}", "Use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB."),
        };
        double bytes = value * factor;
        if (bytes < 1e6 || bytes > 1e15)
            throw new InputError(field, $"{text} is not a plausible device memory", "Give between 1 MB and 1 PB, e.g. 24GiB.");
        return (long)bytes;
    }

    public static string Format(double bytes) =>
        Math.Abs(bytes) >= GiB ? string.Create(CultureInfo.InvariantCulture, $"{bytes / GiB:F2} GiB")
        : Math.Abs(bytes) >= MiB ? string.Create(CultureInfo.InvariantCulture, $"{bytes / MiB:F1} MiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes:F0} B");
}
