using System.CommandLine;
using System.Globalization;
using Afinado.Evaluation;
using Afinado.Evaluation.Figures;
using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Predictions;
using Afinado.Planner;

namespace Afinado.Cli.Commands;

/// <summary><c>afinado calibration FILE</c>: calibration metrics for predictions made by any tool (CSV or JSONL rows).</summary>
public static class CalibrationCommand
{
    public static Command Build()
    {
        var file = new Argument<string>("FILE") { Description = "CSV or JSONL rows of confidence,correct (optionally label, probabilities)." };
        var bins = new Option<int>("--bins") { Description = "Equal-width confidence bins for ECE and the reliability diagram.", DefaultValueFactory = _ => Calibration.DefaultBins };
        var plot = new Option<string?>("--plot") { Description = "Write the reliability diagram to this PNG (or .svg) file." };
        var json = new Option<bool>("--json") { Description = "Print {schema, n, ece, brier, auroc, selective, …} as JSON." };
        var cmd = new Command("calibration", "ECE, Brier score, AUROC and selective accuracy of predictions made anywhere.");
        cmd.Arguments.Add(file);
        cmd.Options.Add(bins);
        cmd.Options.Add(plot);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var m = InputRange.Whole("--bins", parse.GetValue(bins), 1, 1000, "15 is the usual choice");
            var path = parse.GetValue(file)!;
            var plotPath = parse.GetValue(plot);
            if (plotPath is not null) OutputPaths.File("--plot", plotPath);
            var predictions = PredictionFile.Read(path);
            var summary = Calibration.Summarize(predictions, m);
            if (plotPath is not null)
            {
                var fig = ReliabilityDiagram.Build("reliability", Path.GetFileName(path), [("predictions", summary)]);
                if (plotPath.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)) fig.SaveSvg(plotPath); else fig.SavePng(plotPath);
            }
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(EvalJson.Serialize(CalibrationResult.From(path, summary)));
                return CliApp.ExitOk;
            }
            var c = CultureInfo.InvariantCulture;
            output.WriteLine(string.Create(c, $"{path}: {summary.Count} predictions, accuracy {summary.Accuracy:0.0000}, mean confidence {summary.MeanConfidence:0.0000}"));
            output.WriteLine(string.Create(c, $"  ECE   {summary.Ece:0.0000}  ({m} equal-width bins on top-class probability; MCE {summary.Mce:0.0000})"));
            output.WriteLine(string.Create(c, $"  Brier {summary.Brier:0.0000}  ({(summary.BrierKind == BrierKind.MultiClass ? "multi-class, range [0, 2]" : "binary on confidence, range [0, 1]")})"));
            output.WriteLine(summary.Auroc is { } a
                ? string.Create(c, $"  AUROC {a:0.0000}  (confidence separating right from wrong)")
                : "  AUROC undefined (all predictions are right, or all are wrong)");
            foreach (var s in summary.Selective)
                output.WriteLine(string.Create(c, $"  selective accuracy at {s.Coverage:P0} coverage: {s.Accuracy:0.0000}"));
            if (plotPath is not null) output.WriteLine($"  reliability diagram: {plotPath}");
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
