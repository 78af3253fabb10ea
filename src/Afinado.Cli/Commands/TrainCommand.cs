using System.CommandLine;
using Afinado.Planner;
using Afinado.Training.Loop;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado train</c>: finetune (or train) a Llama-style model on text — full, frozen or LoRA — with checkpoints,
/// exact <c>--resume</c>, and measured vs planned peak memory in <c>RUN_DIR/summary.json</c>.
/// </summary>
public static class TrainCommand
{
    public static Command Build()
    {
        var o = new TrainOptions();
        var recipe = new Option<string?>("--recipe") { Description = "Start from a built-in recipe: fortunes-es (LoRA/full finetune of the shipped base on Spanish fortunes)." };
        var resume = new Option<string?>("--resume") { Description = "Continue the run in this folder exactly where its last checkpoint left off." };
        var cmd = new Command("train", "Finetune a Llama-style model (full, freeze or LoRA) with checkpoints and measured memory.");
        o.AddTo(cmd);
        cmd.Options.Add(recipe);
        cmd.Options.Add(resume);
        cmd.SetAction(parse =>
        {
            var resumeDir = parse.GetValue(resume);
            if (resumeDir is not null)
            {
                if (parse.GetValue(recipe) is not null || parse.GetValue(o.Out) is not null)
                    throw new InputError("--resume", "cannot be combined with --recipe or --out", "A resumed run keeps its own configuration; only --max-steps may change.");
                var resumed = LanguageModelRun.Resume(resumeDir, parse.GetValue(o.MaxSteps));
                return RunExecution.Execute(parse, resumed, parse.GetValue(o.Json), Path.GetFullPath(resumeDir));
            }
            var outDir = parse.GetValue(o.Out) ?? throw new InputError("--out", "is required", "Give a new folder for the run, e.g. --out runs/es-lora.");
            TrainConfig baseConfig;
            IReadOnlyList<ExtraEvaluation> extras = [];
            var recipeName = parse.GetValue(recipe);
            if (recipeName is not null) (baseConfig, extras) = Recipes.Get(recipeName);
            else
            {
                if (parse.GetValue(o.Model) is null || parse.GetValue(o.Data) is null)
                    throw new InputError("--model", "without --recipe, both --model and --data are needed", "Use --recipe fortunes-es, or give --model FOLDER --data fortunes-es.");
                baseConfig = new TrainConfig { ModelConfigJson = "{}", Data = "" };
            }
            var config = o.Apply(parse, baseConfig);
            OutputPaths.Folder("--out", outDir);
            var run = new LanguageModelRun(config, outDir, extras);
            return RunExecution.Execute(parse, run, parse.GetValue(o.Json), Path.GetFullPath(outDir));
        });
        return cmd;
    }
}
