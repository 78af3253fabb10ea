using System.CommandLine;
using Afinado.Evaluation;
using Afinado.Evaluation.Reporting;

namespace Afinado.Cli.Commands;

/// <summary><c>afinado report RUN_DIR…</c>: one self-contained HTML page, PNG/SVG figures and report.json.</summary>
public static class ReportCommand
{
    public static Command Build()
    {
        var runs = new Argument<string[]>("RUN_DIR") { Description = "Run folders (manifest.json; summary.json and eval.json when present).", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "Folder for report.html, report.json and figures/.", DefaultValueFactory = _ => "afinado-report" };
        var allow = new Option<bool>("--allow-different-base") { Description = "Compare runs finetuned from different base weights (flagged in the report)." };
        var json = new Option<bool>("--json") { Description = "Print report.json (schema afinado.report/1) to stdout." };
        var cmd = new Command("report", "Write an HTML report (loss, memory, gain and tax with CIs, reliability, verdict) with figures and JSON.");
        cmd.Arguments.Add(runs);
        cmd.Options.Add(outDir);
        cmd.Options.Add(allow);
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(outDir)!;
            OutputPaths.Folder("--out", dir);
            var doc = ReportBuilder.Build(parse.GetValue(runs)!, dir, parse.GetValue(allow));
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(EvalJson.Serialize(doc));
                return CliApp.ExitOk;
            }
            foreach (var w in doc.Warnings) parse.InvocationConfiguration.Error.WriteLine("warning: " + w);
            foreach (var r in doc.Runs.Where(r => r.Evaluation is not null))
                output.WriteLine($"{r.Name}: {r.Evaluation!.Verdict.Headline}");
            output.WriteLine($"wrote {Path.Combine(dir, ReportBuilder.HtmlFile)}, {Path.Combine(dir, ReportBuilder.JsonFile)} and {doc.Figures.Count} figures (PNG + SVG) in {Path.Combine(dir, "figures")}");
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
