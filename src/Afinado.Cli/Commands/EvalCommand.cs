using System.CommandLine;
using System.Globalization;
using Afinado.Evaluation;
using Afinado.Evaluation.Experiments;
using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Planner;
using Afinado.Planner.Memory;
using Afinado.Training.Recipes;
using Spectre.Console;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado eval</c>: was finetuning worth it? Runs the built-in Fashion-MNIST class-split experiment (or the tasks
/// of <c>--tasks</c>), writes a pinned run folder and prints the gain, the tax with CIs, calibration and the verdict.
/// </summary>
public static class EvalCommand
{
    public static Command Build()
    {
        var outDir = new Option<string>("--out") { Description = "Run folder to write (manifest.json, summary.json, eval.json, weights).", Required = true };
        var experiment = new Option<string>("--experiment") { Description = "fashion-split (MLP: base on classes 0-4, finetune on 5-9) or fortunes (byte LM: base on English fortune categories, finetune on Spanish).", DefaultValueFactory = _ => "fashion-split" };
        experiment.AcceptOnlyFromAmong("fashion-split", "fortunes");
        var tasks = new Option<string?>("--tasks") { Description = "JSON task file (schema afinado.tasks/1): one target and retained tasks (Fashion-MNIST classes, or fortune texts for --experiment fortunes)." };
        var rule = new Option<string>("--rule") { Description = "fashion-split: how the finetune learns: backprop or es (evolution strategies, forward passes only).", DefaultValueFactory = _ => "backprop" };
        rule.AcceptOnlyFromAmong("backprop", "es");
        var generations = new Option<int>("--es-generations") { Description = "fashion-split with --rule es: ES generations.", DefaultValueFactory = _ => 150 };
        var replay = new Option<int>("--replay-per-class") { Description = "fashion-split: mix this many training images of each retained class into the finetuning data (rehearsal against forgetting).", DefaultValueFactory = _ => 0 };
        var scaleModel = new Option<string?>("--scale-model") { Description = "fortunes: also estimate GPU-hours of the same finetune (same tokens) on this model (catalog id, config.json or folder)." };
        var scaleTflops = new Option<double>("--scale-tflops") { Description = "Sustained TFLOP/s per GPU for --scale-model.", DefaultValueFactory = _ => 150 };
        var finetuneSteps = new Option<int>("--finetune-steps") { Description = "fortunes: finetuning steps (and of the output-layer alternative).", DefaultValueFactory = _ => 150 };
        var baseModel = new Option<string?>("--base-model") { Description = "Start from these base weights instead of training a base: a weights file, or a name whose hash a --pinned-in manifest records." };
        var baseSha = new Option<string?>("--base-model-sha256") { Description = "Expected SHA-256 of --base-model." };
        var pinnedIn = new Option<string[]>("--pinned-in") { Description = "Run folders whose manifests record hashes for model names.", AllowMultipleArgumentsPerToken = true };
        var seed = new Option<int>("--seed") { Description = "Seed for data subsampling, initialisation, shuffling and the bootstrap.", DefaultValueFactory = _ => 1 };
        var trainPerClass = new Option<int>("--train-per-class") { Description = "Training images per class (subsample of 6,000).", DefaultValueFactory = _ => 500 };
        var testPerClass = new Option<int>("--test-per-class") { Description = "Test images per class (subsample of 1,000).", DefaultValueFactory = _ => 200 };
        var epochs = new Option<int>("--finetune-epochs") { Description = "Epochs of finetuning (and of the last-layer alternative).", DefaultValueFactory = _ => 2 };
        var resamples = new Option<int>("--resamples") { Description = "Paired bootstrap resamples for the 95% CIs.", DefaultValueFactory = _ => 1000 };
        var bins = new Option<int>("--bins") { Description = "ECE bins.", DefaultValueFactory = _ => 15 };
        var run = new Option<string?>("--run") { Description = "Score this `afinado train` run folder (its RUN_DIR/model) against the base its manifest pins: held-out target data, held-out English fortune categories as retained tasks; the base as is is the baseline." };
        var retainedCategories = new Option<string[]>("--retained") { Description = "--run: English fortune categories scored as retained tasks.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => ["computers", "science", "literature"] };
        var itemsPerTask = new Option<int>("--items-per-task") { Description = "--run: held-out items scored per task.", DefaultValueFactory = _ => 100 };
        var shots = new Option<int>("--shots") { Description = "--run on prompt/completion, alpaca or chat data: the base model prompted with up to this many training examples is a cheaper alternative (fewer where its context is short; 0: none).", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print eval.json (schema afinado.eval/1) instead of text; progress goes to stderr." };
        var cmd = new Command("eval", "Measure target gain, alignment tax (paired bootstrap CIs), calibration and the finetune-or-not verdict.");
        foreach (var o in new Option[] { outDir, experiment, scaleModel, scaleTflops, replay, rule, generations, finetuneSteps, tasks, baseModel, baseSha, pinnedIn, run, retainedCategories, itemsPerTask, shots, seed, trainPerClass, testPerClass, epochs, resamples, bins, json }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            // Every numeric flag is checked up front, whichever experiment uses it, so a typo fails before minutes of work.
            InputRange.Whole("--train-per-class", parse.GetValue(trainPerClass), 1, 6000);
            InputRange.Whole("--test-per-class", parse.GetValue(testPerClass), 1, 1000);
            InputRange.Whole("--finetune-epochs", parse.GetValue(epochs), 1, 1000);
            InputRange.Whole("--bins", parse.GetValue(bins), 1, 1000);
            InputRange.Whole("--resamples", parse.GetValue(resamples), 100, 100_000, "1000 is plenty for a 95% CI");
            InputRange.Whole("--es-generations", parse.GetValue(generations), 1, 100_000);
            InputRange.Whole("--replay-per-class", parse.GetValue(replay), 0, 6000, "0 = no rehearsal");
            InputRange.Whole("--finetune-steps", parse.GetValue(finetuneSteps), 1, 100_000);
            InputRange.Whole("--items-per-task", parse.GetValue(itemsPerTask), 1, 100_000);
            InputRange.Real("--scale-tflops", parse.GetValue(scaleTflops), 0, 1e6, minOpen: true, hint: "sustained TFLOP/s per GPU, e.g. 150");
            OutputPaths.Folder("--out", parse.GetValue(outDir)!);
            var progress = Show.Console(parse.InvocationConfiguration.Error);
            Action<string> report = msg => progress.MarkupLine($"[grey]eval:[/] {Show.Markup(msg)}");
            var declared = parse.GetValue(tasks) is { } taskFile ? TaskFile.Read(taskFile) : null;
            EvaluationResult result;
            if (parse.GetValue(run) is { } runDir)
            {
                if (declared is not null || parse.GetValue(baseModel) is not null)
                    throw new InputError("--run", "takes its tasks and base from the run folder", "Leave out --tasks and --base-model with --run.");
                var options = new TrainedRunOptions
                {
                    Seed = parse.GetValue(seed), Resamples = parse.GetValue(resamples), Bins = parse.GetValue(bins),
                    ItemsPerTask = parse.GetValue(itemsPerTask), RetainedCategories = parse.GetValue(retainedCategories) ?? [],
                    Shots = InputRange.Whole("--shots", parse.GetValue(shots), 0, 64, "0 leaves the few-shot alternative out"),
                };
                result = TrainedRunEvaluation.Run(runDir, options, parse.GetValue(outDir)!, report);
            }
            else if (parse.GetValue(experiment) == "fortunes")
            {
                if (parse.GetValue(baseModel) is not null)
                    throw new InputError("--base-model", "is supported by --experiment fashion-split only", "Leave it out: the fortunes experiment trains and pins its own base.");
                var options = new FortuneSplitOptions
                {
                    Training = new FortuneSplitTraining { Seed = parse.GetValue(seed), FinetuneSteps = parse.GetValue(finetuneSteps) },
                    Resamples = parse.GetValue(resamples), Bins = parse.GetValue(bins),
                    ScaleModel = parse.GetValue(scaleModel), ScaleTflops = parse.GetValue(scaleTflops),
                };
                if (declared is not null) options = options with { Tasks = declared };
                // Training trains (the recipe writes the run folder); Evaluation scores what it wrote.
                var trained = FortuneSplitRecipe.Run(FortuneSplitEvaluation.TrainingFor(options), parse.GetValue(outDir)!, report);
                result = FortuneSplitEvaluation.Evaluate(options, trained, parse.GetValue(outDir)!, report);
            }
            else
            {
                if (parse.GetValue(scaleModel) is not null)
                    throw new InputError("--scale-model", "applies to --experiment fortunes only", "A GPU-hours estimate at real-model scale needs a token count; use it with the language-modelling experiment.");
                var options = new ClassSplitOptions
                {
                    Training = new ClassSplitTraining
                    {
                        Seed = parse.GetValue(seed),
                        TrainPerClass = parse.GetValue(trainPerClass),
                        FinetuneEpochs = parse.GetValue(epochs),
                        Rule = parse.GetValue(rule) == "es" ? LearningRule.Es : LearningRule.Backprop,
                        EsGenerations = parse.GetValue(generations),
                        ReplayPerClass = parse.GetValue(replay),
                    },
                    TestPerClass = parse.GetValue(testPerClass),
                    Resamples = parse.GetValue(resamples),
                    Bins = parse.GetValue(bins),
                };
                if (declared is not null) options = options with { Tasks = declared };
                if (parse.GetValue(baseModel) is { } model)
                {
                    var manifests = (parse.GetValue(pinnedIn) ?? []).Select(d => RunDirectory.Open(d, "--pinned-in").Manifest).ToList();
                    var pinned = PinnedIdentity.PinModel(model, parse.GetValue(baseSha), manifests, "--base-model");
                    if (!File.Exists(pinned.Name))
                        throw new InputError("--base-model", $"'{model}' is pinned (sha256 {pinned.Sha256[..12]}…) but no weights file is at '{pinned.Name}'", "Pass the weights file itself, or a run folder whose manifest records where they are.");
                    options = options with { Training = options.Training with { BaseWeights = new PinnedWeights(pinned.Name, pinned.Sha256) } };
                }
                var trained = ClassSplitRecipe.Run(ClassSplitEvaluation.TrainingFor(options), parse.GetValue(outDir)!, report);
                result = ClassSplitEvaluation.Evaluate(options, trained, parse.GetValue(outDir)!, report);
            }
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(EvalJson.Serialize(result));
                return CliApp.ExitOk;
            }
            Print(output, result, parse.GetValue(outDir)!);
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static string ScoreText(ModelScore s)
    {
        var c = CultureInfo.InvariantCulture;
        var text = string.Create(c, $"{s.Model} {s.Score:0.0000}");
        return s.Calibration is { } cal ? text + string.Create(c, $" (ECE {cal.Ece:0.000}, Brier {cal.Brier:0.000}, AUROC {(cal.Auroc is { } a ? a.ToString("0.000", c) : "n/a")})") : text;
    }

    private static void Print(TextWriter o, EvaluationResult r, string dir)
    {
        var c = CultureInfo.InvariantCulture;
        o.WriteLine(r.Description);
        o.WriteLine($"result key {r.ResultKey} (base sha256 {r.BaseSha256[..12]}…, finetuned {r.FinetunedSha256?[..12]}…)");
        foreach (var t in r.Tasks)
        {
            o.WriteLine(string.Create(c, $"  {t.Task.Role.ToString().ToLowerInvariant(),-8} {Show.Plain(t.Task.Name)} ({t.Task.Metric}, {t.Items} items): ") +
                        string.Join(", ", t.Scores.Select(ScoreText)));
            o.WriteLine($"           change finetuned − base {t.Change}" + (t.Tax is { } tax ? $"; tax {tax}" : "") + (t.EceChange is { } e ? $"; ΔECE {e}" : ""));
        }
        if (r.Forgetting is { } f) o.WriteLine(string.Create(c, $"  average forgetting {f.AverageForgetting:0.0000}, backward transfer {f.BackwardTransfer:+0.0000;-0.0000} ({f.Metric})"));
        o.WriteLine();
        o.WriteLine("verdict: " + r.Verdict.Headline);
        foreach (var reason in r.Verdict.Reasons) o.WriteLine("  - " + reason);
        o.WriteLine($"run folder: {Show.Plain(dir)} (report: afinado report {Show.Plain(dir)})");
    }
}
