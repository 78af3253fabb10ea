using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Afinado.Cli.Validation;
using Afinado.Planner.Devices;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado validate</c>: the planner's accuracy against ground truth (published numbers, and our own gpu-*/cpu-*
/// measurements). Exit 0 when every in-scope row is within its tolerance, 1 otherwise.
/// </summary>
public static class ValidateCommand
{
    public const string Schema = "afinado.validate/1";

    public static Command Build()
    {
        var dir = new Option<string?>("--dir") { Description = "Folder with published.csv, gpu-*.csv, cpu-*.csv (default: bench/ground-truth, else the copy shipped with the tool)." };
        var json = new Option<bool>("--json") { Description = "Write afinado.validate/1 JSON to stdout (table to stderr)." };
        var cmd = new Command("validate", "Compare the planner's predictions with measured peak memory, row by row.");
        cmd.Options.Add(dir);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var sources = GroundTruth.Validate(GroundTruth.FindDirectory(parse.GetValue(dir)));
            bool asJson = parse.GetValue(json);
            WriteTable(sources, asJson ? parse.InvocationConfiguration.Error : parse.InvocationConfiguration.Output);
            if (asJson) parse.InvocationConfiguration.Output.WriteLine(Json(sources));
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
                string err = r.RelativeError is { } e ? SignedPercent(e) : "—";
                string ok = !r.Asserted ? "[grey]not asserted[/]" : r.WithinTolerance ? "[green]ok[/]" : "[red]MISS[/]";
                t.AddRow(Show.Markup(r.Id), r.Scope, r.Metric, Fmt(r.PredictedBytes, r.Metric), Fmt(r.MeasuredBytes, r.Metric), err,
                    r.Tolerance is { } tol ? tol.ToString("0%", CultureInfo.InvariantCulture) : "—", ok);
            }
            console.Write(t);
            console.MarkupLine($"{Show.Markup(s.Name)}: {s.Predicted} rows asserted: median |error| {Pct(s.MedianAbsError)}, worst {Pct(s.WorstAbsError)}, misses {s.Failures}; " +
                $"{s.MeasuredPredicted} measured-memory rows: median {Pct(s.MedianAbsErrorMeasured)}; all {s.AllPredicted} predicted rows incl. unmet: median {Pct(s.MedianAbsErrorAllPredicted)}, worst {Pct(s.WorstAbsErrorAllPredicted)}.");
        }
    }

    private static string Fmt(double? bytes, string metric) =>
        bytes is not { } b ? "—" : metric == "kv-bytes-per-token" ? b.ToString("N0", CultureInfo.InvariantCulture) + " B"
        : metric == "max-seq" ? b.ToString("N0", CultureInfo.InvariantCulture) + " tokens" : ByteSize.Format(b);

    private static string Pct(double? x) => x is { } v ? v.ToString("0.0%", CultureInfo.InvariantCulture) : "—";

    private static string Json(IReadOnlyList<ValidationSource> sources)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("schema", Schema);
            w.WriteStartArray("sources");
            foreach (var s in sources)
            {
                w.WriteStartObject();
                w.WriteString("name", s.Name);
                w.WriteString("file", Path.GetFileName(s.File));
                w.WriteNumber("rows_asserted", s.Predicted);
                Num(w, "median_abs_error", s.MedianAbsError);
                Num(w, "worst_abs_error", s.WorstAbsError);
                w.WriteNumber("misses", s.Failures);
                Num(w, "median_abs_error_measured_rows", s.MedianAbsErrorMeasured);
                w.WriteNumber("rows_predicted_all", s.AllPredicted);
                Num(w, "median_abs_error_all_predicted", s.MedianAbsErrorAllPredicted);
                Num(w, "worst_abs_error_all_predicted", s.WorstAbsErrorAllPredicted);
                w.WriteStartArray("rows");
                foreach (var r in s.Rows)
                {
                    w.WriteStartObject();
                    w.WriteString("id", r.Id);
                    w.WriteString("scope", r.Scope);
                    w.WriteString("metric", r.Metric);
                    Num(w, "predicted", r.PredictedBytes);
                    Num(w, "measured", r.MeasuredBytes);
                    Num(w, "relative_error", r.RelativeError);
                    Num(w, "tolerance", r.Tolerance);
                    w.WriteBoolean("asserted", r.Asserted);
                    w.WriteBoolean("within_tolerance", r.WithinTolerance);
                    w.WriteString("note", r.Note);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Num(Utf8JsonWriter w, string name, double? value)
    {
        // A non-finite figure is written as null, as everywhere else (FiniteJson); Utf8JsonWriter would throw on it.
        if (value is { } v && double.IsFinite(v)) w.WriteNumber(name, Math.Round(v, 6)); else w.WriteNull(name);
    }

    /// <summary>+1.2% / −0.4% / 0.0%: an error that rounds to zero prints without a sign (not "-+0.0%").</summary>
    internal static string SignedPercent(double e)
    {
        double rounded = Math.Round(e, 3);
        return rounded == 0 ? "0.0%" : rounded.ToString("+0.0%;-0.0%", CultureInfo.InvariantCulture);
    }
}
