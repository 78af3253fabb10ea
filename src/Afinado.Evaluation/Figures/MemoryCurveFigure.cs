using System.Globalization;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using ScottPlot;

namespace Afinado.Evaluation.Figures;

/// <summary>
/// A plan's memory curve (<c>afinado plan --curve</c>): allocated, reserved and total GiB against seq or batch on a log₂
/// axis, a dashed line per device capacity, and a marker on it at each device's largest fitting value.
/// </summary>
public static class MemoryCurveFigure
{
    public static Figure Build(MemoryCurve curve, string title, string xLabel)
    {
        var plt = new Plot();
        // Doublings are the natural step of both parameters, so x is drawn as log2(value) with the values as tick labels.
        double[] xs = curve.Points.Select(p => Math.Log2(p.Value)).ToArray();
        Line(plt, xs, curve.Points.Select(p => p.AllocatedBytes), "allocated (tensors at the peak)", Colors.SteelBlue);
        if (curve.DeviceKind == DeviceKind.Gpu) Line(plt, xs, curve.Points.Select(p => p.ReservedBytes), "reserved (allocator replay)", Colors.DarkOrange);
        Line(plt, xs, curve.Points.Select(p => p.TotalBytes), "total (≈ nvidia-smi; verdicts use it)", Colors.Black);

        // Largest lists the devices in the curve's order, one entry each: a device keeps its colour on line, marker and label.
        var palette = new ScottPlot.Palettes.Category10();
        var colors = curve.Largest.Select((l, i) => (l.Device.Id, Color: palette.GetColor(2 + i))).ToDictionary(c => c.Id, c => c.Color);
        foreach (var (device, largest) in curve.Largest)
        {
            var capacity = plt.Add.HorizontalLine(device.CapacityBytes / ByteSize.GiB, 1.5f, colors[device.Id], LinePattern.Dashed);
            capacity.LegendText = $"{device.Name}, {ByteSize.Format(device.CapacityBytes)}: " + (largest == 0 ? "nothing fits" : $"up to {largest.ToString("N0", CultureInfo.InvariantCulture)}");
        }
        // Devices with the same largest value (an A100 80GB and an H100) share one marker and one label.
        var groups = curve.Largest.Where(l => l.Value > 0).GroupBy(l => l.Value).OrderBy(g => g.Key).ToList();
        for (int i = 0; i < groups.Count; i++)
        {
            var first = groups[i].First();
            var color = colors[first.Device.Id];
            // On the device's capacity line: the total there may lie above it when the job fits only after a cache release.
            double x = Math.Log2(first.Value), y = first.Device.CapacityBytes / ByteSize.GiB;
            plt.Add.Marker(x, y, MarkerShape.FilledDiamond, 11, color);
            var label = plt.Add.Text($"{string.Join(", ", groups[i].Select(l => l.Device.Name))}: {first.Value.ToString("N0", CultureInfo.InvariantCulture)}", x, y);
            label.LabelFontColor = color;
            label.LabelFontSize = 11;
            label.LabelBold = true;
            // Half-opaque white behind the text keeps it legible where it crosses a curve or another capacity line.
            label.LabelBackgroundColor = Colors.White.WithAlpha(0.75);
            // Labels stay inside the frame (left of markers in the right half) and alternate above and below the line.
            bool left = x > (xs[0] + xs[^1]) / 2, above = i % 2 == 0;
            label.LabelAlignment = (left, above) switch
            {
                (true, true) => Alignment.LowerRight,
                (true, false) => Alignment.UpperRight,
                (false, true) => Alignment.LowerLeft,
                _ => Alignment.UpperLeft,
            };
            label.OffsetX = left ? -6 : 6;
            label.OffsetY = above ? -4 : 4;
        }

        var ticks = Ticks(curve);
        plt.Axes.Bottom.SetTicks(ticks.Select(v => Math.Log2(v)).ToArray(), ticks.Select(Compact).ToArray());
        // Every point and every marker is in view, with half a doubling to spare on each side.
        var markerXs = curve.Largest.Where(l => l.Value > 0).Select(l => Math.Log2(l.Value));
        plt.Axes.SetLimitsX(xs.Concat(markerXs).Min() - 0.5, xs.Concat(markerXs).Max() + 0.5);
        plt.Axes.SetLimitsY(0, Top(curve));
        plt.Title(title.Length <= TitleChars ? title : title.Replace(" — ", "\n"));
        plt.XLabel(xLabel + " (log₂ scale)");
        plt.YLabel("GiB");
        // Beside the axes, not over them: a curve that starts high (a large model on small cards) would hide behind it.
        plt.ShowLegend(Edge.Right);
        return new Figure($"memory-curve-{curve.Parameter}", plt, 1200, 600);
    }

    /// <summary>About what fits one line of the title at the figure's width.</summary>
    private const int TitleChars = 80;

    private static void Line(Plot plt, double[] xs, IEnumerable<long> bytes, string label, Color color)
    {
        var line = plt.Add.Scatter(xs, bytes.Select(b => b / ByteSize.GiB).ToArray(), color);
        line.LegendText = label;
        line.LineWidth = 2;
        line.MarkerSize = 5;
    }

    /// <summary>The sampled values, thinned to at most 14 labels so they never overlap.</summary>
    private static IReadOnlyList<int> Ticks(MemoryCurve curve)
    {
        int stride = (curve.Points.Count + 13) / 14;
        return curve.Points.Where((_, i) => i % stride == 0).Select(p => p.Value).ToList();
    }

    /// <summary>
    /// The y range: up to the curve's top, unless that would squash the capacity lines, where the fit is decided, into the
    /// bottom of the figure; then it stops at 1.5× the largest capacity (or the lowest point) and the table gives the
    /// larger totals. Every capacity line stays in view.
    /// </summary>
    private static double Top(MemoryCurve curve)
    {
        double highest = curve.Points.Max(p => p.TotalBytes) / ByteSize.GiB;
        double lowest = curve.Points.Min(p => p.TotalBytes) / ByteSize.GiB;
        double capacity = curve.Devices.Select(d => d.CapacityBytes / ByteSize.GiB).DefaultIfEmpty(0).Max();
        return 1.06 * Math.Max(capacity, Math.Min(highest, Math.Max(1.5 * capacity, 1.5 * lowest)));
    }

    private static string Compact(int v) =>
        v >= 1 << 20 && v % (1 << 20) == 0 ? $"{v >> 20}M"
        : v >= 1 << 10 && v % (1 << 10) == 0 ? $"{v >> 10}K"
        : v.ToString(CultureInfo.InvariantCulture);
}
