using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;
using Afinado.Planner.Memory;
using Afinado.Training.Data;
using Afinado.Training.Recipes;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// Scores a class-split run (<see cref="ClassSplitRecipe"/>'s folder): the base, finetuned and last-layer models read
/// back from their weights files, each task's held-out test images, the comparison and the verdict. Writes
/// <c>predictions/</c> and <c>eval.json</c> (afinado.eval/1) beside the recipe's files. It trains nothing.
/// </summary>
public static class ClassSplitEvaluation
{
    /// <summary>The recipe's settings for <paramref name="options"/>: its classes are the tasks' (refused unless every
    /// task is a classification task and there is one target).</summary>
    public static ClassSplitTraining TrainingFor(ClassSplitOptions options)
    {
        TaskFile.Validate(EvalParameters.Tasks, options.Tasks);
        if (options.Tasks.Any(t => t.Kind != TaskInfo.Classification))
            throw new InputError(EvalParameters.Tasks, "the class-split experiment takes classification tasks only", "Declare Fashion-MNIST class tasks, or score language-modelling tasks with a language model.");
        return options.Training with
        {
            RetainedClasses = options.Tasks.Where(t => t.Role == TaskRole.Retained).SelectMany(t => t.Classes!).ToArray(),
            TargetClasses = options.Tasks.Single(t => t.Role == TaskRole.Target).Classes!.ToArray(),
        };
    }

    public static EvaluationResult Evaluate(ClassSplitOptions options, ClassSplitRun run, string outDir, Action<string>? progress = null)
    {
        progress ??= _ => { };
        var t = run.Settings;
        if (!t.RetainedClasses.SequenceEqual(TrainingFor(options).RetainedClasses) || !t.TargetClasses.SequenceEqual(TrainingFor(options).TargetClasses))
            throw new ArgumentException("the run was trained on other classes than the options' tasks", nameof(run));

        progress("scoring base, finetuned and last-layer models on every task");
        var test = FashionMnist.ReadSplit(train: false, t.DataDir);
        using var baseModel = ClassSplitRecipe.NewModel(t, run.BasePath);
        using var finetuned = ClassSplitRecipe.NewModel(t, run.FinetunedPath);
        using var lastLayer = ClassSplitRecipe.NewModel(t, run.LastLayerPath);
        var tasks = options.Tasks.OrderBy(s => s.Role).Select(spec =>
        {
            var idx = test.Subsample(spec.Classes!.ToArray(), options.TestPerClass, t.Seed + 3);
            return (IEvalTask)new ClassificationTask(new TaskInfo(spec.Name, spec.Role, TaskInfo.Classification, "accuracy", true),
                test.PixelsOf(idx), test.LabelsOf(idx), FashionMnist.Pixels);
        });
        var cost = new FinetuneCost(run.Summary.WallSeconds, run.Summary.ProcessPeakBytes);
        var comparison = SplitScoring.ScoreAndCompare(tasks, new(baseModel, finetuned, lastLayer), "training only the last layer",
            cost, options.Policy, options.Bins, options.Resamples, t.Seed, outDir);

        bool es = t.Rule == LearningRule.Es;
        string description = $"Fashion-MNIST class split: MLP 784-{t.Hidden}-10 base on classes {string.Join(',', t.RetainedClasses)} " +
            (run.BaseLog is null ? $"(pinned base {t.BaseWeights!.Sha256[..12]}…)" : $"({t.BaseEpochs} epochs, final loss {run.BaseLog.FinalLoss:0.000})") +
            $", finetuned by {(es ? "es" : "backprop")} on {string.Join(',', t.TargetClasses)} " +
            (es ? $"({t.EsGenerations} generations × {t.EsPopulation} antithetic pairs, σ {t.EsSigma}" : $"({t.FinetuneEpochs} epochs") +
            $", {run.FinetuneLog.Steps} steps, final loss {run.FinetuneLog.FinalLoss:0.000}); last-layer alternative final loss {run.LastLayerLog.FinalLoss:0.000}; " +
            $"{t.TrainPerClass} train / {options.TestPerClass} test images per class" +
            (t.ReplayPerClass > 0 ? $"; {t.ReplayPerClass} replayed images per retained class in the finetuning data" : "") + $"; seed {t.Seed}";
        return SplitScoring.Write(outDir, run.Summary.Manifest, description, cost, comparison);
    }
}
