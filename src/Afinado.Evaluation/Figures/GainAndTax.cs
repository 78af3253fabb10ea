using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Tasks;
using ScottPlot;

namespace Afinado.Evaluation.Figures;

/// <summary>
/// The verdict's evidence in one chart: target gain over each cheaper alternative (green) and the alignment tax on
/// each retained task (red), each with its paired bootstrap 95% CI as a whisker. Positive gain is good; positive tax is bad.
/// </summary>
public static class GainAndTax
{
    public static Figure Build(string run, EvaluationResult result)
    {
        var bars = new List<(string Label, Estimate Value, Color Color)>();
        var target = result.Tasks.First(t => t.Task.Role == TaskRole.Target);
        foreach (var g in result.Gains)
            bars.Add(($"gain over\n{MemoryBreakdown.Wrap(g.Baseline)}", g.Gain, Colors.SeaGreen));
        foreach (var t in result.Tasks.Where(t => t.Tax is not null))
            bars.Add(($"tax\n{MemoryBreakdown.Wrap(t.Task.Name)}", t.Tax!, Colors.FireBrick));
        var plt = new Plot();
        for (int i = 0; i < bars.Count; i++)
        {
            var (_, e, color) = bars[i];
            plt.Add.Bar(new Bar { Position = i, Value = e.Value, FillColor = color.WithAlpha(0.8), Size = 0.6 });
            var whisker = plt.Add.Line(i, e.Lower, i, e.Upper);
            whisker.LineWidth = 2;
            whisker.Color = Colors.Black;
            foreach (var y in new[] { e.Lower, e.Upper })
            {
                var cap = plt.Add.Line(i - 0.12, y, i + 0.12, y);
                cap.LineWidth = 2;
                cap.Color = Colors.Black;
            }
        }
        plt.Add.HorizontalLine(0, 1, Colors.Gray);
        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, bars.Count).Select(i => (double)i).ToArray(), bars.Select(b => b.Label).ToArray());
        plt.Title($"{run}: {Readable(result.Verdict.Kind)} (gain and tax, 95% CIs)");
        plt.YLabel($"Δ {target.Task.Metric}");
        return new Figure($"gain-tax-{MemoryBreakdown.Slug(run)}", plt, Math.Max(640, 150 * bars.Count), 440);
    }

    private static string Readable(Verdicts.VerdictKind kind) => kind switch
    {
        Verdicts.VerdictKind.Needed => "finetuning needed",
        Verdicts.VerdictKind.NeededButRecalibrate => "needed, recalibrate",
        Verdicts.VerdictKind.NotWorthTheTax => "not worth the tax",
        _ => "finetuning not needed",
    };
}
