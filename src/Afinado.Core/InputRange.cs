using System.Globalization;

namespace Afinado;

/// <summary>
/// The one range check for numeric flags and config fields: every command validates its numbers through these before
/// any work starts, so a bad value gets an <see cref="InputError"/> that names the flag and the accepted range, instead
/// of NaN/Infinity travelling into training or a JSON writer.
/// </summary>
public static class InputRange
{
    /// <summary>Checks <paramref name="min"/> ≤ <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    public static int Whole(InputText field, int value, int min, int max, InputText? hint = null) =>
        (int)Whole(field, (long)value, min, max, hint);

    /// <inheritdoc cref="Whole(InputText, int, int, int, InputText?)"/>
    public static long Whole(InputText field, long value, long min, long max, InputText? hint = null)
    {
        if (value < min || value > max)
            throw new InputError(field, $"{Show(value)} is outside {Show(min)}–{Show(max)}", Fix($"Use a whole number from {Show(min)} to {Show(max)}", hint));
        return value;
    }

    /// <summary>Checks that a value given (not null) is within the range; null means "not given" and passes.</summary>
    public static void Whole(InputText field, int? value, int min, int max, InputText? hint = null)
    {
        if (value is { } v) Whole(field, v, min, max, hint);
    }

    /// <summary>
    /// Checks a finite real number in a range; each end is inclusive unless marked open. NaN and ±Infinity always fail,
    /// because they would silently disable a comparison downstream (e.g. a clip norm of NaN clips nothing).
    /// </summary>
    public static double Real(InputText field, double value, double min, double max, bool minOpen = false, bool maxOpen = false, InputText? hint = null)
    {
        string range = $"{(minOpen ? "(" : "[")}{Show(min)}, {Show(max)}{(maxOpen ? ")" : "]")}";
        if (!double.IsFinite(value))
            throw new InputError(field, $"{Show(value)} is not a finite number", Fix($"Use a number in {range}", hint));
        bool below = minOpen ? value <= min : value < min;
        bool above = maxOpen ? value >= max : value > max;
        if (below || above)
            throw new InputError(field, $"{Show(value)} is outside {range}", Fix($"Use a number in {range}", hint));
        return value;
    }

    /// <inheritdoc cref="Real(InputText, double, double, double, bool, bool, InputText?)"/>
    public static void Real(InputText field, double? value, double min, double max, bool minOpen = false, bool maxOpen = false, InputText? hint = null)
    {
        if (value is { } v) Real(field, v, min, max, minOpen, maxOpen, hint);
    }

    private static InputText Fix(string use, InputText? hint) => hint is null ? use + "." : (InputText)$"{use} ({hint}).";

    // Whole bounds print in full (1000000, not 1E+06); fractions keep six significant digits.
    private static string Show(double v) =>
        double.IsFinite(v) && v == Math.Floor(v) && Math.Abs(v) < 1e15 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("G6", CultureInfo.InvariantCulture);
    private static string Show(long v) => v.ToString(CultureInfo.InvariantCulture);
}
