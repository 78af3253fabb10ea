using Afinado.Planner;

namespace Afinado.Cli.Commands;

/// <summary>
/// The CLI's sinks for text that echoes input (tensor and model names, config strings, paths, messages): control
/// characters are spelled out by <see cref="TerminalText.Escape"/> before anything reaches the terminal.
/// </summary>
internal static class Show
{
    /// <summary>For Spectre markup (table cells, marked-up lines): control characters spelled out, then brackets escaped.</summary>
    public static string Markup(string? text) => Spectre.Console.Markup.Escape(TerminalText.Escape(text));

    /// <summary>For plain lines: control characters spelled out; newlines too, so one item stays one line.</summary>
    public static string Plain(string? text) => TerminalText.Escape(text);
}
