using System.Globalization;
using System.Runtime.CompilerServices;

namespace Afinado;

/// <summary>
/// A sentence about bad input that keeps the <see cref="InputParameter"/>s it names typed, so each front end renders them in
/// its own words (<see cref="Render"/>); plain text and interpolated strings convert to it. Every other value is formatted
/// when the text is built, in the invariant culture (messages read the same on every machine).
/// </summary>
[InterpolatedStringHandler]
public sealed class InputText
{
    // Each part is a string or an InputParameter.
    private readonly List<object> _parts;

    public InputText(int literalLength, int formattedCount) => _parts = new List<object>(2 * formattedCount + 1);

    private InputText(List<object> parts) => _parts = parts;

    public static implicit operator InputText(string text) => new([text]);

    public static implicit operator InputText(InputParameter parameter) => new([parameter]);

    /// <summary><paramref name="text"/> when <paramref name="condition"/> holds, else null (an optional hint that keeps its parameters typed).</summary>
    public static InputText? When(bool condition, InputText text) => condition ? text : null;

    public void AppendLiteral(string text) => _parts.Add(text);

    public void AppendFormatted<T>(T value) => AppendFormatted(value, 0, null);

    public void AppendFormatted<T>(T value, string? format) => AppendFormatted(value, 0, format);

    public void AppendFormatted<T>(T value, int alignment, string? format = null)
    {
        switch (value)
        {
            case InputParameter p when alignment == 0: _parts.Add(p); break;
            case InputText t when alignment == 0: _parts.AddRange(t._parts); break;
            default:
                string text = value is IFormattable f ? f.ToString(format, CultureInfo.InvariantCulture) : value?.ToString() ?? "";
                _parts.Add(alignment < 0 ? text.PadRight(-alignment) : text.PadLeft(alignment));
                break;
        }
    }

    /// <summary>The one parameter this text consists of, or null (a file, a model's config key, a sentence).</summary>
    public InputParameter? AsParameter => _parts is [InputParameter p] ? p : null;

    /// <summary>The parameters the text names, in order.</summary>
    public IEnumerable<InputParameter> Parameters => _parts.OfType<InputParameter>();

    /// <summary>The text with each parameter named by <paramref name="name"/> (the CLI passes its flag map).</summary>
    public string Render(Func<InputParameter, string> name) =>
        string.Concat(_parts.Select(p => p is InputParameter parameter ? name(parameter) : (string)p));

    /// <summary>The text with each parameter under its neutral name.</summary>
    public override string ToString() => Render(p => p.Name);
}
