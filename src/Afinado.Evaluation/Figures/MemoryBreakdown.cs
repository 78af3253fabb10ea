using ScottPlot;

namespace Afinado.Evaluation.Figures;

/// <summary>Planned vs measured bytes per ledger entry (MiB), side by side, for one run.</summary>
public static class MemoryBreakdown
{
    public static Figure? Build(string run, IReadOnlyDictionary<string, long>? planned, IReadOnlyDictionary<string, long>? measured, long? plannedPeak, long? measuredPeak)
    {
        var names = (planned?.Keys ?? []).Concat(measured?.Keys ?? []).Distinct().ToList();
        // Peaks share the chart only when both exist: a lone process RSS would dwarf the ledger entries it cannot be compared to.
        if (plannedPeak is not null && measuredPeak is not null) names.Add("peak");
        if (names.Count == 0) return null;
        const double mib = 1024.0 * 1024;
        var plt = new Plot();
        var plannedColor = Colors.SteelBlue;
        var measuredColor = Colors.DarkOrange;
        for (int i = 0; i < names.Count; i++)
        {
            var name = names[i];
            long? p = name == "peak" ? plannedPeak : planned?.GetValueOrDefault(name);
            long? m = name == "peak" ? measuredPeak : measured?.GetValueOrDefault(name);
            if (p is { } pv && planned?.ContainsKey(name) != false) plt.Add.Bar(new Bar { Position = i * 3, Value = pv / mib, FillColor = plannedColor, Size = 1 });
            if (m is { } mv && (name == "peak" || measured!.ContainsKey(name))) plt.Add.Bar(new Bar { Position = i * 3 + 1, Value = mv / mib, FillColor = measuredColor, Size = 1 });
        }
        plt.Axes.Bottom.SetTicks(names.Select((_, i) => i * 3 + 0.5).ToArray(), names.Select(Wrap).ToArray());
        plt.Axes.Margins(bottom: 0);
        plt.Legend.ManualItems.Add(new LegendItem { LabelText = "planned", FillColor = plannedColor });
        plt.Legend.ManualItems.Add(new LegendItem { LabelText = "measured", FillColor = measuredColor });
        plt.ShowLegend(Alignment.UpperLeft);
        plt.Title($"Memory, planned vs measured: {run}");
        plt.YLabel("MiB");
        return new Figure($"memory-{Slug(run)}", plt, 760, 420);
    }

    internal static string Wrap(string name) => name.Length <= 14 ? name : string.Join('\n', Chunks(name));

    private static IEnumerable<string> Chunks(string name)
    {
        var line = "";
        foreach (var word in name.Split(' '))
        {
            if (line.Length > 0 && line.Length + word.Length > 14) { yield return line; line = ""; }
            line = line.Length == 0 ? word : line + " " + word;
        }
        if (line.Length > 0) yield return line;
    }

    internal static string Slug(string s) => new(s.Select(ch => char.IsLetterOrDigit(ch) ? char.ToLowerInvariant(ch) : '-').ToArray());
}
