using Afinado.Training.Loop;
using Afinado.Evaluation.Runs;
using ScottPlot;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Figures;

/// <summary>Training (and validation, when recorded) loss against step, one line per run.</summary>
public static class LossCurves
{
    public static Figure? Build(IReadOnlyList<(string Run, RunSummary Summary)> runs)
    {
        var withCurves = runs.Where(r => r.Summary.LossCurve is { Count: > 0 }).ToList();
        if (withCurves.Count == 0) return null;
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < withCurves.Count; i++)
        {
            var (run, summary) = withCurves[i];
            var curve = summary.LossCurve!;
            var train = plt.Add.Scatter(curve.Select(p => (double)p.Step).ToArray(), curve.Select(p => p.TrainLoss).ToArray());
            train.LegendText = $"{run} train ({summary.Rule})";
            train.Color = palette.GetColor(i);
            train.MarkerSize = 3;
            var val = curve.Where(p => p.ValidationLoss is not null).ToList();
            // The trainer's validation loss before the first step (the base model's) anchors the curve at step 0.
            if (summary.InitialValidationLoss is { } before && curve[0].Step > 0) val.Insert(0, new LossPoint(0, double.NaN, before));
            if (val.Count > 0)
            {
                var v = plt.Add.Scatter(val.Select(p => (double)p.Step).ToArray(), val.Select(p => p.ValidationLoss!.Value).ToArray());
                v.LegendText = $"{run} validation";
                v.Color = palette.GetColor(i);
                v.LinePattern = LinePattern.Dashed;
            }
        }
        plt.Title("Loss curves");
        plt.XLabel("step");
        plt.YLabel("loss");
        plt.ShowLegend(Alignment.UpperRight);
        return new Figure("loss-curves", plt);
    }
}
