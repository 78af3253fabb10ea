using System.Globalization;
using System.Text;

namespace Afinado;

/// <summary>
/// Makes text from files and flags safe to print on a terminal. Tensor names, config strings and paths are attacker-
/// controlled: an ESC sequence in them could recolour, move the cursor, retitle the window or hide text, and a bidi
/// override could make a line read differently than it is. Every human-readable sink that echoes input (CLI error
/// lines, inspect and plan tables) passes the text through <see cref="Escape"/>, which spells such characters out as
/// <c>\x1b</c> / <c>\u202e</c> so they stay visible without acting.
/// </summary>
public static class TerminalText
{
    /// <summary>
    /// Escapes C0 controls (including ESC), DEL, C1 controls, bidi embedding/override/isolate marks and lone surrogates; a backslash is
    /// left alone (harmless on a terminal, and escaping it would mangle Windows paths). <paramref name="keepLayout"/> keeps \n and \t for sinks
    /// where the text is meant to span lines (a multi-line message); table cells and one-line errors pass false.
    /// </summary>
    public static string Escape(string? text, bool keepLayout = false)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        StringBuilder? sb = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            // A surrogate pair is one real character (an emoji); a lone surrogate is not text any terminal can show.
            bool pair = char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);
            if (pair || !NeedsEscape(c, keepLayout))
            {
                sb?.Append(c);
                if (pair) { sb?.Append(text[i + 1]); i++; }
                continue;
            }
            sb ??= new StringBuilder(text.Length + 16).Append(text, 0, i);
            if (c <= 0xFF) sb.Append(@"\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append(@"\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb?.ToString() ?? text;
    }

    private static bool NeedsEscape(char c, bool keepLayout) => c switch
    {
        '\n' or '\t' => !keepLayout,
        < ' ' or '\u007f' => true,
        >= '\u0080' and <= '\u009f' => true,
        '\u061c' or '\u200e' or '\u200f' => true, // Arabic letter mark, LRM, RLM
        >= '\u202a' and <= '\u202e' => true,      // LRE, RLE, PDF, LRO, RLO
        >= '\u2066' and <= '\u2069' => true,      // LRI, RLI, FSI, PDI
        _ => char.IsSurrogate(c),                  // reached only for a surrogate outside a pair
    };
}
