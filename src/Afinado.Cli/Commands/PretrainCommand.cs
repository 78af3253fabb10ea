using System.CommandLine;
using Afinado.Planner;
using Afinado.Training.Loop;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado pretrain</c>: trains the small English base from scratch (recipe <c>fortunes-base</c>: a 1.67M-parameter
/// Llama on English fortunes). With <c>--publish DIR</c> it copies the result (model.safetensors, config.json,
/// manifest.json, summary.json) to DIR — that is how <c>models/fortunes-base</c> is regenerated.
/// </summary>
public static class PretrainCommand
{
    public static Command Build()
    {
        var o = new TrainOptions();
        var publish = new Option<string?>("--publish") { Description = "Copy the finished base model (weights, config, manifest, summary) to this folder." };
        var cmd = new Command("pretrain", "Train the small English base model from scratch on English fortunes.");
        o.AddTo(cmd);
        cmd.Options.Add(publish);
        cmd.SetAction(parse =>
        {
            var outDir = parse.GetValue(o.Out) ?? throw new InputError("--out", "is required", "Give a new folder for the run, e.g. --out runs/base.");
            var (recipeConfig, _) = Recipes.Get("fortunes-base");
            var config = o.Apply(parse, recipeConfig);
            OutputPaths.Folder("--out", outDir);
            if (parse.GetValue(publish) is { } publishDir) OutputPaths.Folder("--publish", publishDir);
            var code = RunExecution.Execute(parse, new LanguageModelRun(config, outDir), parse.GetValue(o.Json), Path.GetFullPath(outDir));
            var target = parse.GetValue(publish);
            if (code == CliApp.ExitOk && target is not null)
            {
                Directory.CreateDirectory(target);
                foreach (var f in new[] { "model/model.safetensors", "model/config.json", LanguageModelRun.ManifestFile, LanguageModelRun.SummaryFile, LanguageModelRun.ConfigFile })
                    File.Copy(Path.Combine(outDir, f), Path.Combine(target, Path.GetFileName(f)), overwrite: true);
                parse.InvocationConfiguration.Error.WriteLine($"published the base model to {target}");
            }
            return code;
        });
        return cmd;
    }
}
