using System.Globalization;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>
/// The human view of a memory curve: one row per sampled value with allocated / reserved / total and ✓ / ✗ per device,
/// then a row with the exact largest value each device holds (between the sampled rows, from the search).
/// </summary>
internal static class CurveTable
{
    public static void Write(Plan plan, MemoryCurve curve, TextWriter writer)
    {
        var console = Show.Console(writer);
        if (Console.IsOutputRedirected || writer != Console.Out) console.Profile.Width = 180;
        bool gpu = curve.DeviceKind == DeviceKind.Gpu;
        var job = plan.Job;
        string held = CurvePlot.Held(job, curve);
        console.MarkupLine($"[bold]Memory vs {Show.Markup(CurvePlot.AxisLabel(job, curve))}[/] — {Show.Markup(plan.Architecture.Name)}, {held}; other settings as above");

        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn(new TableColumn(curve.Parameter).RightAligned());
        table.AddColumn(new TableColumn("allocated").RightAligned());
        if (gpu) table.AddColumn(new TableColumn("reserved").RightAligned());
        table.AddColumn(new TableColumn("total").RightAligned());
        foreach (var d in curve.Devices)
            table.AddColumn(new TableColumn($"{Show.Markup(d.Name)}\n[grey]{ByteSize.Format(d.CapacityBytes)}[/]").Centered());
        foreach (var p in curve.Points)
        {
            var cells = new List<string> { Count(p.Value), ByteSize.Format(p.AllocatedBytes) };
            if (gpu) cells.Add(ByteSize.Format(p.ReservedBytes));
            cells.Add(ByteSize.Format(p.TotalBytes));
            cells.AddRange(p.Verdicts.Select(v => v.Unsupported is not null ? "[red]✗ cannot run[/]" : v.FitsAfterCacheRelease ? "[yellow]✓ after release[/]" : v.Fits ? "[green]✓[/]" : "[red]✗ OOM[/]"));
            table.AddRow(cells.ToArray());
        }
        var largest = new List<string> { "[bold]largest[/]", "", "" };
        if (gpu) largest.Add("");
        largest.AddRange(curve.Largest.Select(l => $"[bold]{LargestText(l, curve.Limit)}[/]"));
        table.AddRow(largest.ToArray());
        console.Write(table);
        if (curve.Points.Any(p => p.Verdicts.Any(v => v.FitsAfterCacheRelease)))
            console.MarkupLine("[grey]✓ after release = the total is above the capacity, but the step still runs once PyTorch frees its cached blocks and retries (borderline)[/]");
        foreach (var v in curve.Points.SelectMany(p => p.Verdicts).Where(v => v.Unsupported is not null).DistinctBy(v => v.Device.Id))
            console.MarkupLine($"[red]Cannot run on {Show.Markup(v.Device.Name)}:[/] {Show.Markup(v.Unsupported!.Render(CliFlags.Of))}.");
        foreach (var v in curve.Points.SelectMany(p => p.Verdicts).Where(v => v.SdpaMath is not null).DistinctBy(v => v.Device.Id))
            console.MarkupLine($"[yellow]Note:[/] {Show.Markup(v.Device.Name)}: {Show.Markup(v.SdpaMath!)}; its column judges that step, not the totals shown.");
        // A device that dequantizes the stored weights judges each point's 16-bit load, not the totals in the table.
        foreach (var v in curve.Points.SelectMany(p => p.Verdicts).Where(v => v.Dequantized is not null).DistinctBy(v => v.Device.Id))
            console.MarkupLine($"[yellow]Note:[/] {Show.Markup(v.Device.Name)}: {Show.Markup(v.Dequantized!.Reason)}; its column judges that load, not the totals shown.");
        console.MarkupLine(curve.Parameter == "seq"
            ? $"[grey]largest = the exact longest {(job.IsTraining ? "sequence" : "context")} that fits (searched, not sampled); capped at max_position_embeddings {Count(curve.Limit)}[/]"
            : "[grey]largest = the exact largest batch that fits (searched, not sampled)[/]");
    }

    private static string LargestText(CurveLargest l, int limit) =>
        l.Value == 0 ? "none" : l.Value == limit ? $"{Count(l.Value)} (limit)" : Count(l.Value);

    private static string Count(int v) => v.ToString("N0", CultureInfo.InvariantCulture);
}
