using Afinado.Evaluation.Figures;
using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Planner;

namespace Afinado.Evaluation.Reporting;

/// <summary>
/// <c>afinado report</c>: reads run folders, refuses to mix base models unless allowed, draws the figures and writes
/// report.html (self-contained: images inlined as base64), report.json (afinado.report/1) and figures/*.png|svg.
/// </summary>
public static class ReportBuilder
{
    public const string HtmlFile = "report.html";
    public const string JsonFile = "report.json";

    public static ReportDocument Build(IReadOnlyList<string> runDirs, string outDir, bool allowDifferentBase)
    {
        if (runDirs.Count == 0) throw new InputError("RUN_DIR", "no run folder given", "Pass at least one run folder.");
        var runs = runDirs.Select(d => RunDirectory.Open(d)).ToList();
        var names = runs.Select(r => r.Name).ToList();
        if (names.Distinct().Count() != names.Count)
        {
            // Two folders with the same leaf name (e.g. a/run and b/run): label them by their full path.
            names = runs.Select(r => r.Path).ToList();
        }
        var warnings = PinnedIdentity.CheckSameBase(runs, allowDifferentBase).ToList();
        foreach (var r in runs.Where(r => r.Evaluation is not null && r.Evaluation.BaseSha256 != r.Manifest.BaseSha256))
            warnings.Add($"run '{r.Name}': eval.json was computed for base {PinnedIdentity.Short(r.Evaluation!.BaseSha256)} but the manifest pins {PinnedIdentity.Short(r.Manifest.BaseSha256)}: the results do not belong to these weights");
        foreach (var r in runs.Where(r => r.Evaluation is null))
            warnings.Add($"run '{r.Name}' has no eval.json: run `afinado eval` on it for gain, tax, calibration and the verdict");

        if (File.Exists(outDir)) throw new InputError(EvalParameters.Out, $"'{outDir}' is a file", "Give a folder for the report.");
        var figDir = Path.Combine(outDir, "figures");
        Directory.CreateDirectory(figDir);
        var figures = new List<(Figure Figure, string Caption)>();
        var summaries = runs.Select((r, i) => (names[i], r.Summary)).Where(x => x.Summary is not null).Select(x => (x.Item1, x.Summary!)).ToList();
        if (LossCurves.Build(summaries) is { } loss) figures.Add((loss, "Training loss per logged step or window; markers: validation loss where it was evaluated."));
        for (int i = 0; i < runs.Count; i++)
        {
            var r = runs[i];
            if (r.Summary is { } s && MemoryBreakdown.Build(names[i], s.PlannedBreakdown, s.MeasuredBreakdown, s.PlannedPeakBytes, s.MeasuredPeakBytes) is { } mem)
                figures.Add((mem, $"{names[i]}: planned ledger entries vs what was measured."));
            if (r.Evaluation is not { } e) continue;
            figures.Add((GainAndTax.Build(names[i], e), $"{names[i]}: target gain over each cheaper alternative (green, up = better) and alignment tax per retained task (red, up = worse), paired bootstrap 95% CIs."));
            foreach (var t in e.Tasks)
            {
                var series = t.Scores.Where(m => m.Calibration is not null).Select(m => (m.Model, m.Calibration!)).ToList();
                if (series.Count == 0) continue;
                figures.Add((ReliabilityDiagram.Build($"reliability-{MemoryBreakdown.Slug(names[i])}-{MemoryBreakdown.Slug(t.Task.Name)}",
                    $"{names[i]}: {t.Task.Name} ({t.Task.Role.ToString().ToLowerInvariant()})", series),
                    $"{names[i]}: reliability on {t.Task.Name}; ECE per model in the legend."));
            }
        }
        var reportFigures = new List<ReportFigure>();
        var pngs = new List<byte[]>();
        foreach (var (fig, caption) in figures)
        {
            var png = fig.Png();
            pngs.Add(png);
            File.WriteAllBytes(Path.Combine(figDir, fig.Name + ".png"), png);
            fig.SaveSvg(Path.Combine(figDir, fig.Name + ".svg"));
            reportFigures.Add(new ReportFigure(fig.Name, caption, $"figures/{fig.Name}.png", $"figures/{fig.Name}.svg"));
        }
        var doc = new ReportDocument(
            runs.Select((r, i) => new ReportRun(names[i], Path.GetFullPath(r.Path), PinnedIdentity.ResultKey(r.Manifest), r.Manifest, r.Summary, r.Evaluation)).ToList(),
            warnings, reportFigures);
        File.WriteAllText(Path.Combine(outDir, JsonFile), EvalJson.Serialize(doc));
        File.WriteAllText(Path.Combine(outDir, HtmlFile), ReportHtml.Render(doc, pngs));
        return doc;
    }
}
