using System.Globalization;
using System.Net;
using System.Text;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation.Reporting;

/// <summary>Renders the report document as one self-contained HTML page (inline CSS, images as base64 data URIs).</summary>
public static class ReportHtml
{
    public static string Render(ReportDocument doc, IReadOnlyList<byte[]> figurePngs)
    {
        var h = new StringBuilder();
        h.Append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Afinado report</title>
            <style>
            body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:2rem auto;max-width:1100px;color:#222;background:#fff;line-height:1.4}
            h1{margin-bottom:.2rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
            table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem} td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
            th{background:#f3f3f3} code{font-size:.85rem;word-break:break-all}
            .verdict{padding:.8rem 1rem;border-radius:6px;margin:.8rem 0;font-size:1.05rem}
            .needed{background:#e3f5e6;border-left:6px solid #2e8b57} .needed_but_recalibrate{background:#fff6dc;border-left:6px solid #d4a017}
            .not_worth_the_tax,.not_needed{background:#fde8e6;border-left:6px solid #b22222}
            .warn{background:#fde8e6;border:1px solid #b22222;padding:.5rem 1rem;border-radius:6px}
            figure{margin:1rem 0;display:inline-block;vertical-align:top} figcaption{font-size:.85rem;color:#555;max-width:760px}
            img{border:1px solid #eee;max-width:100%}
            </style></head><body>
            <h1>Afinado report: was finetuning worth it?</h1>
            """);
        h.Append(CultureInfo.InvariantCulture, $"<p>{doc.Runs.Count} run(s). Schema {E(doc.Schema)}; the same content is in report.json.</p>\n");
        if (doc.Warnings.Count > 0)
            h.Append("<div class=\"warn\"><b>Warnings</b><ul>").AppendJoin("", doc.Warnings.Select(w => $"<li>{E(w)}</li>")).Append("</ul></div>\n");
        RenderOverview(h, doc.Runs);
        foreach (var run in doc.Runs) RenderRun(h, run);
        h.Append("<h2>Figures</h2>\n");
        for (int i = 0; i < doc.Figures.Count; i++)
        {
            var f = doc.Figures[i];
            h.Append(CultureInfo.InvariantCulture,
                $"<figure><img alt=\"{E(f.Name)}\" src=\"data:image/png;base64,{Convert.ToBase64String(figurePngs[i])}\"><figcaption>{E(f.Caption)} (<a href=\"{E(f.Svg)}\">SVG</a>)</figcaption></figure>\n");
        }
        h.Append("</body></html>\n");
        return h.ToString();
    }

    /// <summary>One row per run: the numbers the verdicts turned on, side by side.</summary>
    private static void RenderOverview(StringBuilder h, IReadOnlyList<ReportRun> runs)
    {
        var c = CultureInfo.InvariantCulture;
        h.Append("<h2>Overview</h2>\n<table><tr><th>run</th><th>rule</th><th>target gain over strongest alternative (95% CI)</th><th>largest tax (95% CI)</th><th>largest ΔECE</th><th>finetune wall time</th><th>verdict</th></tr>\n");
        foreach (var run in runs)
        {
            var e = run.Evaluation;
            var gain = e?.Gains.MinBy(g => g.Gain.Value);
            var tax = e?.Tasks.Where(t => t.Tax is not null).MaxBy(t => t.RelativeTax);
            var ece = e?.Tasks.Where(t => t.EceChange is not null).MaxBy(t => t.EceChange!.Value);
            h.Append(c, $"<tr><td>{E(run.Name)}</td><td>{E(run.Summary?.Rule ?? "–")}</td>");
            h.Append(c, $"<td>{(gain is null ? "–" : E($"{gain.Gain} {gain.Metric} over {gain.Baseline}"))}</td>");
            h.Append(c, $"<td>{(tax is null ? "–" : E($"{tax.Tax} on {tax.Task.Name}"))}</td>");
            h.Append(c, $"<td>{(ece is null ? "–" : E($"{ece.EceChange!.Value:+0.000;-0.000} on {ece.Task.Name}"))}</td>");
            h.Append(c, $"<td>{(run.Summary is { } s ? s.WallSeconds.ToString("0.#", c) + " s" : "–")}</td>");
            h.Append(c, $"<td>{(e is null ? "not evaluated" : $"<span class=\"verdict {KindClass(e.Verdict.Kind)}\" style=\"padding:.1rem .4rem\">{E(e.Verdict.Kind.ToString())}</span>")}</td></tr>\n");
        }
        h.Append("</table>\n");
    }

    private static void RenderRun(StringBuilder h, ReportRun run)
    {
        var c = CultureInfo.InvariantCulture;
        h.Append(c, $"<h2>Run {E(run.Name)}</h2>\n");
        if (run.Evaluation is { } e)
        {
            h.Append(c, $"<div class=\"verdict {KindClass(e.Verdict.Kind)}\"><b>Verdict:</b> {E(e.Verdict.Headline)}</div>\n<ul>");
            foreach (var reason in e.Verdict.Reasons) h.Append(c, $"<li>{E(reason)}</li>");
            h.Append(c, $"</ul><p>{E(e.Description)}</p>\n");
            h.Append("<table><tr><th>task</th><th>role</th><th>model</th><th>score</th><th>ECE</th><th>Brier</th><th>AUROC</th><th>selective acc. 50/80/100%</th></tr>\n");
            foreach (var t in e.Tasks)
                foreach (var m in t.Scores)
                {
                    var cal = m.Calibration;
                    h.Append(c, $"<tr><td>{E(t.Task.Name)}</td><td>{t.Task.Role.ToString().ToLowerInvariant()}</td><td>{E(m.Model)}</td><td>{m.Score:0.0000} {E(t.Task.Metric)}</td>");
                    h.Append(c, $"<td>{N(cal?.Ece)}</td><td>{N(cal?.Brier)}</td><td>{N(cal?.Auroc)}</td><td>{(cal is null ? "–" : string.Join(" / ", cal.Selective.Select(s => s.Accuracy.ToString("0.000", c))))}</td></tr>\n");
                }
            h.Append("</table>\n<table><tr><th>task</th><th>finetuned − base (95% CI)</th><th>tax (95% CI)</th><th>ΔECE (95% CI)</th></tr>\n");
            foreach (var t in e.Tasks)
                h.Append(c, $"<tr><td>{E(t.Task.Name)}</td><td>{E(t.Change.ToString())}</td><td>{E(t.Tax?.ToString() ?? "–")}</td><td>{E(t.EceChange?.ToString() ?? "–")}</td></tr>\n");
            h.Append("</table>\n");
            if (e.Forgetting is { } f)
                h.Append(c, $"<p>Average forgetting {f.AverageForgetting:0.0000}, backward transfer {f.BackwardTransfer:+0.0000;-0.0000} ({E(f.Metric)}).</p>\n");
        }
        h.Append("<table><tr><th colspan=\"2\">pinned identity</th></tr>");
        h.Append(c, $"<tr><td>result key</td><td><code>{E(run.ResultKey)}</code></td></tr>");
        if (run.Manifest.BaseWeights.Count == 0) h.Append("<tr><td>base weights</td><td>none (trained from scratch)</td></tr>");
        foreach (var b in run.Manifest.BaseWeights) h.Append(c, $"<tr><td>base weights</td><td>{E(b.Path)}<br><code>{E(b.Sha256)}</code></td></tr>");
        foreach (var o in run.Manifest.OutputWeights ?? []) h.Append(c, $"<tr><td>finetuned weights</td><td>{E(o.Path)}<br><code>{E(o.Sha256)}</code></td></tr>");
        if (run.Manifest.DataFiles.Count <= 5)
            foreach (var d in run.Manifest.DataFiles) h.Append(c, $"<tr><td>data</td><td>{E(d.Path)}<br><code>{E(d.Sha256)}</code></td></tr>");
        else
        {
            // Corpora span dozens of files: one folded row keeps the identity table readable; every hash stays in the page.
            h.Append(c, $"<tr><td>data</td><td><details><summary>{run.Manifest.DataFiles.Count} files, digest <code>{E(run.Manifest.DataSha256)}</code></summary>");
            foreach (var d in run.Manifest.DataFiles) h.Append(c, $"{E(d.Path)}<br><code>{E(d.Sha256)}</code><br>");
            h.Append("</details></td></tr>");
        }
        h.Append(c, $"<tr><td>config</td><td><code>{E(run.Manifest.ConfigSha256)}</code></td></tr><tr><td>code</td><td><code>{E(run.Manifest.CodeVersion)}</code></td></tr><tr><td>seed</td><td>{run.Manifest.Seed}</td></tr></table>\n");
        if (run.Summary is { } s)
        {
            h.Append(c, $"<table><tr><th colspan=\"2\">training summary</th></tr><tr><td>parameters (trainable / total)</td><td>{s.TrainableParameters:N0} / {s.TotalParameters:N0}</td></tr>");
            h.Append(c, $"<tr><td>steps, wall time</td><td>{s.Steps:N0} steps, {s.WallSeconds:0.###} s ({E(s.Method)}, {E(s.Rule)}, {E(s.Status)})</td></tr>");
            h.Append(c, $"<tr><td>peak memory (planned / measured)</td><td>{MiB(s.PlannedPeakBytes)} / {MiB(s.MeasuredPeakBytes)}</td></tr>");
            if (s.ProcessPeakBytes is { } process) h.Append(c, $"<tr><td>process peak resident set (not a tensor measurement)</td><td>{MiB(process)}</td></tr>");
            h.Append(c, $"<tr><td>final loss (train / validation)</td><td>{N(s.FinalTrainLoss)} / {N(s.FinalValidationLoss)}</td></tr>");
            h.Append(c, $"<tr><td>validation loss before → after</td><td>{N(s.InitialValidationLoss)} → {N(s.FinalValidationLoss)}</td></tr>");
            foreach (var (name, x) in s.ExtraValidation)
                h.Append(c, $"<tr><td>{E(name)} validation loss before → after</td><td>{N(x.Before)} → {N(x.After)}</td></tr>");
            h.Append("</table>\n");
        }
    }

    private static string KindClass(VerdictKind kind) => kind switch
    {
        VerdictKind.Needed => "needed",
        VerdictKind.NeededButRecalibrate => "needed_but_recalibrate",
        VerdictKind.NotWorthTheTax => "not_worth_the_tax",
        _ => "not_needed",
    };

    private static string N(double? v) => v is { } x ? x.ToString("0.0000", CultureInfo.InvariantCulture) : "–";
    private static string MiB(long? b) => b is { } x ? (x / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB" : "not recorded";
    private static string E(string s) => WebUtility.HtmlEncode(s);
}
