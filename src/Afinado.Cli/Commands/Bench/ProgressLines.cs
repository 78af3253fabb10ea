using Spectre.Console;

namespace Afinado.Cli.Commands.Bench;

/// <summary>
/// Progress for long benchmark runs, always on stderr (stdout stays clean for tables and --json). Uses Spectre.Console's
/// markup so the lines are coloured on a terminal and plain when redirected.
/// </summary>
internal sealed class ProgressLines
{
    private readonly IAnsiConsole _console;

    public ProgressLines(TextWriter stderr) =>
        _console = Show.Console(stderr);

    public void Report(string what, string detail) =>
        _console.MarkupLine($"[grey]{Show.Markup(DateTime.UtcNow.ToString("HH:mm:ss"))}[/] [blue]{Show.Markup(what)}[/] {Show.Markup(detail)}");
}
