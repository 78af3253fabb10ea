using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;
using Afinado.Training.Recipes;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// Scores a fortune-split run (<see cref="FortuneSplitRecipe"/>'s folder): the base, finetuned and output-layer models
/// read back from their weights files, per-token loss and next-token calibration on each task's held-out fortunes, the
/// comparison and the verdict. Writes <c>predictions/</c> and <c>eval.json</c> (afinado.eval/1). It trains nothing.
/// </summary>
public static class FortuneSplitEvaluation
{
    /// <summary>The recipe's settings for <paramref name="options"/>: its texts are the tasks' (refused unless every task is
    /// a language-modelling task with one target). A bad <c>--scale-model</c> fails here, before anything trains.</summary>
    public static FortuneSplitTraining TrainingFor(FortuneSplitOptions options)
    {
        TaskFile.Validate(EvalParameters.Tasks, options.Tasks);
        if (options.Tasks.Any(t => t.Kind != TaskInfo.LanguageModelling))
            throw new InputError(EvalParameters.Tasks, "the fortune experiment takes language-modelling tasks only", "Declare tasks with \"kind\": \"language_modelling\" and a \"text\" path.");
        if (options.ScaleModel is { } early) ScaleCostEstimate.ForTokens(early, 1, options.ScaleTflops);
        return options.Training with { Texts = options.Tasks.Select(t => new SplitText(t.Name, t.Text!, t.Role == TaskRole.Target)).ToList() };
    }

    public static EvaluationResult Evaluate(FortuneSplitOptions options, FortuneSplitRun run, string outDir, Action<string>? progress = null)
    {
        progress ??= _ => { };
        var t = run.Settings;
        if (!t.Texts.SequenceEqual(TrainingFor(options).Texts))
            throw new ArgumentException("the run was trained on other texts than the options' tasks", nameof(run));

        progress("scoring per-token loss and next-token calibration on held-out fortunes");
        using var baseModel = FortuneSplitRecipe.NewModel(t, run.BasePath);
        using var finetuned = FortuneSplitRecipe.NewModel(t, run.FinetunedPath);
        using var lastLayer = FortuneSplitRecipe.NewModel(t, run.LastLayerPath);
        var tasks = options.Tasks.OrderBy(s => s.Role).Select(spec =>
            (IEvalTask)new LanguageModellingTask(LanguageModellingTask.Describe(spec.Name, spec.Role), run.HeldOut[spec.Name]));
        var cost = new FinetuneCost(run.Summary.WallSeconds, run.Summary.ProcessPeakBytes);
        if (options.ScaleModel is { } scaleModel)
        {
            var tokens = (long)t.FinetuneSteps * t.Batch * t.Window;
            var (hours, name, parameters) = ScaleCostEstimate.ForTokens(scaleModel, tokens, options.ScaleTflops);
            cost = cost with { GpuHoursAtScale = hours, ScaleModel = $"{name} ({parameters / 1e9:0.##}B parameters, {tokens:N0} tokens, 6·P·D at {options.ScaleTflops:0.#} TFLOP/s)" };
        }
        var comparison = SplitScoring.ScoreAndCompare(tasks, new(baseModel, finetuned, lastLayer), "training only the output layer",
            cost, options.Policy, options.Bins, options.Resamples, t.Seed, outDir);

        var retained = t.Texts.Where(x => !x.Target).Select(x => x.Name);
        string description = $"Fortunes split: byte-level window LM (context {t.Context}, {run.Summary.TotalParameters:N0} parameters) base on {string.Join(", ", retained)} " +
            $"({t.BaseSteps} steps, final loss {run.BaseLog.FinalLoss:0.000}), finetuned by backprop on '{t.Texts.Single(x => x.Target).Name}' ({t.FinetuneSteps} steps, final loss {run.FinetuneLog.FinalLoss:0.000}); " +
            $"output-layer alternative final loss {run.LastLayerLog.FinalLoss:0.000}; {t.TrainItemsPerTask} train / {t.TestItemsPerTask} held-out fortunes per task, ≤ {t.MaxTokens} bytes each; seed {t.Seed}";
        return SplitScoring.Write(outDir, run.Summary.Manifest, description, cost, comparison);
    }
}
