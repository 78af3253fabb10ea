using Afinado.Planner;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>
/// The CLI's sinks for text that echoes input (tensor and model names, config strings, paths, messages): control
/// characters are spelled out by <see cref="TerminalText.Escape"/> before anything reaches the terminal.
/// </summary>
internal static class Show
{
    /// <summary>For Spectre markup (table cells, marked-up lines): control characters spelled out, then brackets escaped.</summary>
    public static string Markup(string? text) => Spectre.Console.Markup.Escape(TerminalText.Escape(text));

    /// <summary>
    /// A Spectre console over <paramref name="writer"/>. Colours and styles only when the writer is this process's own
    /// terminal: Spectre detects ANSI support from the environment (TERM), not from the writer, so a redirected stream,
    /// a file or an in-process caller's StringWriter (tests, the page) would otherwise receive escape sequences.
    /// </summary>
    public static IAnsiConsole Console(TextWriter writer)
    {
        bool terminal = (writer == System.Console.Out && !System.Console.IsOutputRedirected)
            || (writer == System.Console.Error && !System.Console.IsErrorRedirected);
        return AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
    }

    /// <summary>For plain lines: control characters spelled out; newlines too, so one item stays one line.</summary>
    public static string Plain(string? text) => TerminalText.Escape(text);
}
