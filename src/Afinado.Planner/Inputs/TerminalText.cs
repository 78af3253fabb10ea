using System.Globalization;
using System.Text;

namespace Afinado.Planner.Inputs;

/// <summary>
/// Text from an input (a tensor name, a config string, a path) made safe to print: control characters that a terminal
/// would act on — C0 controls, DEL, C1 controls (ESC sequences start colour changes, cursor moves, title changes) and
/// the bidirectional overrides that reorder what is shown — come out as visible escapes (<c>\x1b</c>, <c>\u202e</c>).
/// </summary>
public static class TerminalText
{
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        var sb = (StringBuilder?)null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool pair = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            if (pair || !NeedsEscape(c))
            {
                sb?.Append(c);
                if (pair) { sb?.Append(text[i + 1]); i++; }
                continue;
            }
            sb ??= new StringBuilder(text.Length + 16).Append(text, 0, i);
            if (c <= 0xFF) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb?.ToString() ?? text;
    }

    /// <summary>Characters <see cref="Escape"/> rewrites: controls, bidi overrides, and surrogates not part of a pair.</summary>
    private static bool NeedsEscape(char c) =>
        c < 0x20 || (c >= 0x7F && c <= 0x9F) || char.IsSurrogate(c)
        || c is '\u061C' or '\u200E' or '\u200F' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');
}
