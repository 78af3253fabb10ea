namespace Afinado.Cli.Commands.Bench;

/// <summary>Writes a PNG of several loss curves on a log10 axis (ScottPlot 5).</summary>
internal static class LossCurvePlot
{
    /// <param name="curves">method → loss per step; plotted as log10(loss − offset) so curves approaching the optimum stay visible.</param>
    public static void Save(string path, string title, IReadOnlyDictionary<string, double[]> curves, double offset, string yLabel)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (name, curve) in curves)
        {
            int stride = Math.Max(1, curve.Length / 2000);
            var xs = new List<double>();
            var ys = new List<double>();
            for (int i = 0; i < curve.Length; i += stride)
            {
                double excess = curve[i] - offset;
                if (!double.IsFinite(excess) || excess <= 0) continue;
                xs.Add(i);
                ys.Add(Math.Log10(excess));
            }
            var line = plot.Add.ScatterLine(xs.ToArray(), ys.ToArray());
            line.LegendText = name;
            line.LineWidth = 2;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(yLabel);
        plot.ShowLegend();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 900, 560);
    }
}
