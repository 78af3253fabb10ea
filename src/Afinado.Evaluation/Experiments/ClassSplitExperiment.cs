using Afinado.Training.Recipes;
using Afinado.Training.Loop;
using System.Diagnostics;
using System.Reflection;
using Afinado.Evaluation.Data;
using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;
using Afinado.Planner;
using Afinado.Planner.Memory;
using TorchSharp;
using static TorchSharp.torch;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// Runs the class-split experiment end to end and writes a pinned run folder: base.weights, finetuned.weights,
/// last-layer.weights, config.json, manifest.json (afinado.manifest/1), summary.json (afinado.run/1) and eval.json
/// (afinado.eval/1). Everything is seeded; the same options and code give the same numbers.
/// </summary>
public static class ClassSplitExperiment
{
    public const string LastLayer = "last-layer";
    private const int Classes = 10;

    public static EvaluationResult Run(ClassSplitOptions options, string outDir, Action<string>? progress = null)
    {
        progress ??= _ => { };
        TaskFile.Validate("--tasks", options.Tasks);
        if (options.Tasks.Any(t => t.Kind != TaskInfo.Classification))
            throw new InputError("--tasks", "the class-split experiment takes classification tasks only", "Declare Fashion-MNIST class tasks, or score language-modelling tasks with a language model.");
        Directory.CreateDirectory(outDir);
        var target = options.Tasks.Single(t => t.Role == TaskRole.Target);
        var retainedClasses = options.Tasks.Where(t => t.Role == TaskRole.Retained).SelectMany(t => t.Classes!).ToArray();

        progress("loading Fashion-MNIST");
        var train = FashionMnist.Load("train", options.DataDir);
        var test = FashionMnist.Load("test", options.DataDir);
        var baseIdx = train.Subsample(retainedClasses, options.TrainPerClass, options.Seed);
        var ftIdx = train.Subsample(target.Classes!.ToArray(), options.TrainPerClass, options.Seed + 1);
        if (options.ReplayPerClass > 0)
            ftIdx = [.. ftIdx, .. train.Subsample(retainedClasses, options.ReplayPerClass, options.Seed + 4)];

        torch.manual_seed(options.Seed);
        var baseModel = MlpClassifier.Create(FashionMnist.Pixels, options.Hidden, Classes);
        var basePath = Path.GetFullPath(Path.Combine(outDir, "base.weights"));
        TrainingLog? baseLog = null;
        if (options.BaseWeights is { } pinned)
        {
            // Pinned base: the bytes must still be the ones whose hash was recorded.
            var actual = PinnedIdentity.Sha256OfFile(pinned.Name);
            if (actual != pinned.Sha256)
                throw new InputError("--base-model", $"'{pinned.Name}' now hashes to {actual[..12]}…, not the recorded {pinned.Sha256[..12]}…", "The weights changed since they were pinned: use the recorded file or re-pin it.");
            progress($"loading the pinned base {pinned.Name} (sha256 {pinned.Sha256[..12]}…)");
            try { baseModel.load(pinned.Name); }
            catch (Exception e) when (e is not InputError)
            {
                throw new InputError("--base-model", $"'{pinned.Name}' is not a {options.Hidden}-hidden MLP checkpoint ({e.Message.Split('\n')[0]})", "Pass base.weights from an earlier `afinado eval` run with the same --hidden.", e);
            }
            if (Path.GetFullPath(pinned.Name) != Path.GetFullPath(basePath)) File.Copy(pinned.Name, basePath, overwrite: true);
        }
        else
        {
            progress($"training the base on classes {string.Join(',', retainedClasses)} ({baseIdx.Length} images)");
            baseLog = SupervisedTrainer.Train(baseModel, train.PixelsOf(baseIdx), train.LabelsOf(baseIdx), FashionMnist.Pixels,
                options.BaseEpochs, options.BatchSize, options.LearningRate, options.Seed);
            baseModel.save(basePath);
        }

        var ftX = train.PixelsOf(ftIdx);
        var ftY = train.LabelsOf(ftIdx);
        var rule = options.Rule == FinetuneRule.Es ? "es" : "backprop";
        progress($"finetuning all layers on classes {string.Join(',', target.Classes!)} ({ftIdx.Length} images, {rule})");
        var finetuned = MlpClassifier.Create(FashionMnist.Pixels, options.Hidden, Classes);
        finetuned.load(basePath);
        var ftLog = options.Rule == FinetuneRule.Es
            ? EvolutionStrategyTrainer.Train(finetuned, ftX, ftY, FashionMnist.Pixels, options.EsGenerations, options.EsPopulation, options.EsSigma, options.EsLearningRate, options.EsBatch, options.Seed + 2)
            : SupervisedTrainer.Train(finetuned, ftX, ftY, FashionMnist.Pixels, options.FinetuneEpochs, options.BatchSize, options.LearningRate, options.Seed + 2);
        // The rule drops the gradients at the end of each step; it measured them while the optimizer stepped.
        var measuredGradBytes = ftLog.PeakGradientBytes;
        var peakAfter = Process.GetCurrentProcess().PeakWorkingSet64;
        var finetunedPath = Path.GetFullPath(Path.Combine(outDir, "finetuned.weights"));
        finetuned.save(finetunedPath);

        progress("training only the last layer (the cheaper alternative)");
        var lastLayer = MlpClassifier.Create(FashionMnist.Pixels, options.Hidden, Classes);
        lastLayer.load(basePath);
        MlpClassifier.FreezeAllButLastLayer(lastLayer);
        var llLog = SupervisedTrainer.Train(lastLayer, ftX, ftY, FashionMnist.Pixels, options.FinetuneEpochs, options.BatchSize, options.LastLayerLearningRate, options.Seed + 2);
        lastLayer.save(Path.Combine(outDir, "last-layer.weights"));

        progress("scoring base, finetuned and last-layer models on every task");
        var scores = new List<IReadOnlyDictionary<string, TaskScores>>();
        foreach (var spec in options.Tasks.OrderBy(t => t.Role))
        {
            var idx = test.Subsample(spec.Classes!.ToArray(), options.TestPerClass, options.Seed + 3);
            var task = new ClassificationTask(new TaskInfo(spec.Name, spec.Role, TaskInfo.Classification, "accuracy", true),
                test.PixelsOf(idx), test.LabelsOf(idx), FashionMnist.Pixels);
            var byModel = new Dictionary<string, TaskScores>
            {
                [FinetuneComparison.Base] = task.Score(baseModel, FinetuneComparison.Base),
                [FinetuneComparison.Finetuned] = task.Score(finetuned, FinetuneComparison.Finetuned),
            };
            if (spec.Role == TaskRole.Target) byModel[LastLayer] = task.Score(lastLayer, LastLayer);
            scores.Add(byModel);
        }
        Predictions.PredictionWriter.Write(outDir, scores);
        var cost = new FinetuneCost(ftLog.WallSeconds, peakAfter);
        var (tasks, gains, forgetting, verdict) = FinetuneComparison.Compare(scores, new Dictionary<string, string> { [LastLayer] = "training only the last layer" },
            cost, options.Policy, options.Bins, options.Resamples, options.Seed);

        var config = EvalJson.Serialize(options with { Policy = options.Policy });
        var configPath = Path.Combine(outDir, "config.json");
        File.WriteAllText(configPath, config);
        RunManifest.FileHash baseHash = options.BaseWeights is { } pinnedBase
            ? new(pinnedBase.Name, pinnedBase.Sha256, new FileInfo(pinnedBase.Name).Length)
            : RunManifest.Hash(basePath);
        var manifest = RunFolderWriter.Manifest([baseHash], [finetunedPath], train.Files.Concat(test.Files), configPath, options.Seed, CodeVersion());
        File.WriteAllText(Path.Combine(outDir, RunDirectory.ManifestFile), EvalJson.Serialize(manifest));

        long total = MlpClassifier.ParameterCount(finetuned);
        var summary = new RunSummary
        {
            Status = "completed",
            Method = "full",
            Rule = rule,
            MaxSteps = (int)ftLog.Steps,
            // Backprop: one forward per step; ES: one per antithetic candidate (2 × population) per generation.
            ForwardPasses = options.Rule == FinetuneRule.Es ? ftLog.Steps * 2 * options.EsPopulation : ftLog.Steps,
            TrainPositions = ftLog.Steps * (options.Rule == FinetuneRule.Es ? options.EsBatch : options.BatchSize),
            Manifest = manifest,
            TotalParameters = total,
            TrainableParameters = total,
            PlannedPeakBytes = null,
            ProcessPeakBytes = peakAfter,
            FinalTrainLoss = ftLog.FinalLoss,
            Steps = ftLog.Steps,
            WallSeconds = ftLog.WallSeconds,
            LossCurve = ftLog.LossCurve,
            PlannedBreakdown = RunSummary.Breakdown(PlannedLedger(total, options)),
            // ES never calls backward, so it has no gradients to measure.
            MeasuredBreakdown = options.Rule == FinetuneRule.Es
                ? new Dictionary<string, long> { ["weights"] = finetuned.parameters().Sum(p => p.numel() * p.element_size()) }
                : new Dictionary<string, long> { ["weights"] = finetuned.parameters().Sum(p => p.numel() * p.element_size()), ["gradients"] = measuredGradBytes },
        };
        File.WriteAllText(Path.Combine(outDir, RunDirectory.SummaryFile), EvalJson.Serialize(summary));

        var result = new EvaluationResult
        {
            ResultKey = PinnedIdentity.ResultKey(manifest),
            BaseSha256 = manifest.BaseSha256!,
            FinetunedSha256 = manifest.OutputSha256,
            Description = $"Fashion-MNIST class split: MLP 784-{options.Hidden}-10 base on classes {string.Join(',', retainedClasses)} " +
                          (baseLog is null ? $"(pinned base {options.BaseWeights!.Sha256[..12]}…)" : $"({options.BaseEpochs} epochs, final loss {baseLog.FinalLoss:0.000})") + $", finetuned by {rule} on {string.Join(',', target.Classes!)} " +
                          (options.Rule == FinetuneRule.Es ? $"({options.EsGenerations} generations × {options.EsPopulation} antithetic pairs, σ {options.EsSigma}" : $"({options.FinetuneEpochs} epochs") + $", {ftLog.Steps} steps, final loss {ftLog.FinalLoss:0.000}); last-layer alternative final loss {llLog.FinalLoss:0.000}; " +
                          $"{options.TrainPerClass} train / {options.TestPerClass} test images per class" +
                          (options.ReplayPerClass > 0 ? $"; {options.ReplayPerClass} replayed images per retained class in the finetuning data" : "") + $"; seed {options.Seed}",
            Tasks = tasks,
            Gains = gains,
            Forgetting = forgetting,
            Verdict = verdict,
            Cost = cost,
        };
        File.WriteAllText(Path.Combine(outDir, RunDirectory.EvaluationFile), EvalJson.Serialize(result));
        baseModel.Dispose();
        finetuned.Dispose();
        lastLayer.Dispose();
        return result;
    }

    /// <summary>
    /// Analytic fp32 ledger of the finetune. Backprop (AdamW): weights, gradients, two AdamW moments and one batch's
    /// activations (input, hidden pre/post ReLU, logits, and their gradients). ES (<see cref="Training.LearningRules.EsRule"/>
    /// in place with Adam): weights, one perturbation buffer, the gradient estimate and the .grad copy the optimizer reads,
    /// Adam's two moments and one forward pass's activations (no backward, no stored graph).
    /// </summary>
    internal static IReadOnlyList<LedgerEntry> PlannedLedger(long parameters, ClassSplitOptions o)
    {
        long perImage = (FashionMnist.Pixels + 2L * o.Hidden + Classes) * 4;
        return o.Rule == FinetuneRule.Es
            ? PlannedMemory.EsWithAdam(parameters, o.EsBatch * perImage)
            : [.. PlannedMemory.FullAdamW(parameters), PlannedMemory.BatchActivations(o.BatchSize * perImage * 2)];
    }

    /// <summary>The git commit this build was made from (the SDK stamps it into the informational version).</summary>
    public static string CodeVersion()
    {
        var v = typeof(ClassSplitExperiment).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        var plus = v.IndexOf('+');
        return plus >= 0 ? v[(plus + 1)..] : v;
    }
}
