using System.CommandLine;
using System.Globalization;
using Afinado.Cli.Validation;
using Afinado.Planner.Devices;
using Afinado.Planner.Validation;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado validate</c>: the planner's accuracy against ground truth (published numbers, and our own gpu-*/cpu-*
/// measurements). Exit 0 when every in-scope row is within its tolerance, 1 otherwise. The comparison is the planner's
/// (<see cref="GroundTruth"/>, <see cref="ValidationJson"/>); here are the options, the plan_args parser and the table.
/// </summary>
public static class ValidateCommand
{
    public static Command Build()
    {
        var dir = new Option<string?>("--dir") { Description = "Folder with published.csv, gpu-*.csv, cpu-*.csv (default: bench/ground-truth, else the copy shipped with the tool)." };
        var json = new Option<bool>("--json") { Description = $"Write {ValidationJson.Schema} JSON to stdout (table to stderr)." };
        var cmd = new Command("validate", "Compare the planner's predictions with measured peak memory, row by row.");
        cmd.Options.Add(dir);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var sources = GroundTruth.Validate(GroundTruth.FindDirectory(parse.GetValue(dir)), PlanArgsFlags.Parse);
            bool asJson = parse.GetValue(json);
            WriteTable(sources, asJson ? parse.InvocationConfiguration.Error : parse.InvocationConfiguration.Output);
            if (asJson) parse.InvocationConfiguration.Output.WriteLine(ValidationJson.Serialize(sources));
            return sources.Sum(s => s.Failures) == 0 ? CliApp.ExitOk : CliApp.ExitFailure;
        });
        return cmd;
    }

    private static void WriteTable(IReadOnlyList<ValidationSource> sources, TextWriter writer)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        if (Console.IsOutputRedirected || writer != Console.Out) console.Profile.Width = 160;
        foreach (var s in sources)
        {
            var t = new Table().Border(TableBorder.Rounded).Title($"{s.Name} ({Path.GetFileName(s.File)})");
            foreach (var c in new[] { "Row", "Scope", "Metric", "Predicted", "Measured", "Error", "Tolerance", "" }) t.AddColumn(c);
            foreach (var r in s.Rows)
            {
                string err = r.RelativeError is { } e ? SignedPercent(e)
                    : r.HeadroomBytes is { } room ? (room >= 0 ? $"{ByteSize.Format(room)} to spare" : $"{ByteSize.Format(-room)} over") : "—";
                string ok = !r.Asserted ? "[grey]not asserted[/]" : r.WithinTolerance ? "[green]ok[/]" : "[red]MISS[/]";
                t.AddRow(Show.Markup(r.Id), r.Scope, r.Metric, Fmt(r.PredictedBytes, r.Metric), Fmt(r.MeasuredBytes, r.Metric), err,
                    r.Tolerance is { } tol ? tol.ToString("0%", CultureInfo.InvariantCulture) : "—", ok);
            }
            console.Write(t);
            console.MarkupLine($"{Show.Markup(s.Name)}: {s.Predicted} rows asserted: median |error| {Pct(s.MedianAbsError)}, worst {Pct(s.WorstAbsError)}, misses {s.Failures}; " +
                $"{s.MeasuredPredicted} measured-memory rows: median {Pct(s.MedianAbsErrorMeasured)}; all {s.AllPredicted} predicted rows incl. unmet: median {Pct(s.MedianAbsErrorAllPredicted)}, worst {Pct(s.WorstAbsErrorAllPredicted)}." +
                (s.Bounds > 0 ? $" Published claims checked as bounds: {s.BoundsMet} of {s.Bounds} hold." : ""));
        }
    }

    private static string Fmt(double? bytes, string metric) =>
        bytes is not { } b ? "—" : metric == "kv-bytes-per-token" ? b.ToString("N0", CultureInfo.InvariantCulture) + " B"
        : metric == "max-seq" ? b.ToString("N0", CultureInfo.InvariantCulture) + " tokens" : ByteSize.Format(b);

    private static string Pct(double? x) => x is { } v ? v.ToString("0.0%", CultureInfo.InvariantCulture) : "—";

    /// <summary>+1.2% / −0.4% / 0.0%: an error that rounds to zero prints without a sign (not "-+0.0%").</summary>
    internal static string SignedPercent(double e)
    {
        double rounded = Math.Round(e, 3);
        return rounded == 0 ? "0.0%" : rounded.ToString("+0.0%;-0.0%", CultureInfo.InvariantCulture);
    }
}
