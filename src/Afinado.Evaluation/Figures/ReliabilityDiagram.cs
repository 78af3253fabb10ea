using Afinado.Evaluation.Metrics;
using ScottPlot;

namespace Afinado.Evaluation.Figures;

/// <summary>
/// Reliability diagram (Guo et al. 2017): accuracy per confidence bin against the diagonal of perfect calibration.
/// Several series (e.g. base and finetuned) share one chart so the calibration change is visible at a glance.
/// </summary>
public static class ReliabilityDiagram
{
    public static Figure Build(string name, string title, IReadOnlyList<(string Label, CalibrationSummary Summary)> series)
    {
        var plt = new Plot();
        var diagonal = plt.Add.Scatter(new[] { 0.0, 1.0 }, new[] { 0.0, 1.0 });
        diagonal.LegendText = "perfect calibration";
        diagonal.LinePattern = LinePattern.Dashed;
        diagonal.Color = Colors.Gray;
        diagonal.MarkerSize = 0;
        var palette = new ScottPlot.Palettes.Category10();
        for (int s = 0; s < series.Count; s++)
        {
            var (label, summary) = series[s];
            var filled = summary.Reliability.Where(b => b.Count > 0).ToArray();
            var line = plt.Add.Scatter(filled.Select(b => b.MeanConfidence).ToArray(), filled.Select(b => b.Accuracy).ToArray());
            line.LegendText = $"{label} (ECE {summary.Ece:0.000}, n={summary.Count})";
            line.Color = palette.GetColor(s);
            line.MarkerSize = 7;
            line.LineWidth = 2;
        }
        plt.Axes.SetLimits(0, 1, 0, 1);
        plt.Title(title);
        plt.XLabel($"confidence (top-class probability, {series.FirstOrDefault().Summary?.Bins ?? Calibration.DefaultBins} equal-width bins)");
        plt.YLabel("accuracy in bin");
        plt.ShowLegend(Alignment.UpperLeft);
        return new Figure(name, plt, 560, 480);
    }
}
