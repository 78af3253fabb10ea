using System.Diagnostics;
using Afinado.Planner.Memory;
using Afinado.Training.Data;
using Afinado.Training.Models;
using Afinado.Training.Runs;
using TorchSharp;
using Afinado.Training.Loop;

namespace Afinado.Training.Recipes;

/// <summary>Weights to start from instead of training them, pinned by content: the bytes must still hash to <c>Sha256</c>.</summary>
public sealed record PinnedWeights(string Path, string Sha256);

/// <summary>
/// The Fashion-MNIST class-split recipe's settings (its run folder's <c>config.json</c>): a base MLP learns the retained
/// classes, a finetune learns the target classes, and the cheaper alternative trains only the last layer on the same data.
/// Sizes default to a subsample that trains in seconds on a laptop CPU.
/// </summary>
public sealed record ClassSplitTraining
{
    /// <summary>Classes the base learns (the tasks the finetune should not forget).</summary>
    public IReadOnlyList<int> RetainedClasses { get; init; } = [0, 1, 2, 3, 4];
    /// <summary>Classes the finetune learns.</summary>
    public IReadOnlyList<int> TargetClasses { get; init; } = [5, 6, 7, 8, 9];
    public int TrainPerClass { get; init; } = 500;
    /// <summary>Rehearsal: this many training images of each retained class are mixed into the finetuning data (0 = none).</summary>
    public int ReplayPerClass { get; init; }
    public int Hidden { get; init; } = 128;
    public int BaseEpochs { get; init; } = 3;
    public int FinetuneEpochs { get; init; } = 2;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>The last-layer alternative trains far fewer parameters and gets a probe's usual larger step.</summary>
    public double LastLayerLearningRate { get; init; } = 1e-2;
    public int Seed { get; init; } = 1;
    public string DataDir { get; init; } = FashionMnist.DefaultDir;
    /// <summary>How the finetune learns: <see cref="LearningRule.Backprop"/> (AdamW) or <see cref="LearningRule.Es"/>
    /// (antithetic evolution strategies with Adam: forward passes only).</summary>
    public LearningRule Rule { get; init; } = LearningRule.Backprop;
    public int EsGenerations { get; init; } = 150;
    public int EsPopulation { get; init; } = 20;
    public float EsSigma { get; init; } = 0.02f;
    public double EsLearningRate { get; init; } = 0.01;
    public int EsBatch { get; init; } = 256;
    /// <summary>Start from these pinned base weights (a file saved by an earlier run) instead of training a base.</summary>
    public PinnedWeights? BaseWeights { get; init; }
}

/// <summary>What the class-split recipe trained: its run folder's weights files, each stage's log (no base log when the
/// base was pinned) and the summary it wrote (with the manifest).</summary>
public sealed record ClassSplitRun(ClassSplitTraining Settings, string BasePath, string FinetunedPath, string LastLayerPath,
    TrainingLog? BaseLog, TrainingLog FinetuneLog, TrainingLog LastLayerLog, RunSummary Summary);

/// <summary>
/// Trains the class split and writes its run folder: <c>base.weights</c>, <c>finetuned.weights</c>,
/// <c>last-layer.weights</c>, <c>config.json</c>, <c>manifest.json</c> (afinado.manifest/1) and <c>summary.json</c>
/// (afinado.run/1). Everything is seeded; the same settings and code give the same weights. Scoring the three models is
/// Evaluation's (it reads them back from the folder).
/// </summary>
public static class ClassSplitRecipe
{
    public const string BaseFile = "base.weights", FinetunedFile = "finetuned.weights", LastLayerFile = "last-layer.weights";
    public const int Classes = 10;

    public static ClassSplitRun Run(ClassSplitTraining t, string outDir, Action<string>? progress = null)
    {
        progress ??= _ => { };
        Check(t);
        Directory.CreateDirectory(outDir);
        progress("loading Fashion-MNIST");
        var train = FashionMnist.ReadSplit(train: true, t.DataDir);
        var baseIdx = train.Subsample(t.RetainedClasses.ToArray(), t.TrainPerClass, t.Seed);
        var ftIdx = train.Subsample(t.TargetClasses.ToArray(), t.TrainPerClass, t.Seed + 1);
        if (t.ReplayPerClass > 0)
            ftIdx = [.. ftIdx, .. train.Subsample(t.RetainedClasses.ToArray(), t.ReplayPerClass, t.Seed + 4)];

        torch.manual_seed(t.Seed);
        using var baseModel = NewModel(t);
        var basePath = Path.GetFullPath(Path.Combine(outDir, BaseFile));
        TrainingLog? baseLog = null;
        if (t.BaseWeights is { } pinned)
        {
            // Pinned base: the bytes must still be the ones whose hash was recorded.
            var actual = RunManifest.Hash(pinned.Path).Sha256;
            if (actual != pinned.Sha256)
                throw new InputError(TrainParameters.BaseModel, $"'{pinned.Path}' now hashes to {actual[..12]}…, not the recorded {pinned.Sha256[..12]}…", "The weights changed since they were pinned: use the recorded file or re-pin it.");
            progress($"loading the pinned base {pinned.Path} (sha256 {pinned.Sha256[..12]}…)");
            try { baseModel.load(pinned.Path); }
            catch (Exception e) when (e is not InputError)
            {
                throw new InputError(TrainParameters.BaseModel, $"'{pinned.Path}' is not a {t.Hidden}-hidden MLP checkpoint ({e.Message.Split('\n')[0]})", "Pass base.weights from an earlier `afinado eval` run with the same hidden size.", e);
            }
            if (Path.GetFullPath(pinned.Path) != basePath) File.Copy(pinned.Path, basePath, overwrite: true);
        }
        else
        {
            progress($"training the base on classes {string.Join(',', t.RetainedClasses)} ({baseIdx.Length} images)");
            baseLog = SupervisedTrainer.Train(baseModel, train.PixelsOf(baseIdx), train.LabelsOf(baseIdx), FashionMnist.Pixels,
                t.BaseEpochs, t.BatchSize, t.LearningRate, t.Seed);
            baseModel.save(basePath);
        }

        var ftX = train.PixelsOf(ftIdx);
        var ftY = train.LabelsOf(ftIdx);
        bool es = t.Rule == LearningRule.Es;
        progress($"finetuning all layers on classes {string.Join(',', t.TargetClasses)} ({ftIdx.Length} images, {(es ? "es" : "backprop")})");
        using var finetuned = NewModel(t);
        finetuned.load(basePath);
        var ftLog = es
            ? EvolutionStrategyTrainer.Train(finetuned, ftX, ftY, FashionMnist.Pixels, t.EsGenerations, t.EsPopulation, t.EsSigma, t.EsLearningRate, t.EsBatch, t.Seed + 2)
            : SupervisedTrainer.Train(finetuned, ftX, ftY, FashionMnist.Pixels, t.FinetuneEpochs, t.BatchSize, t.LearningRate, t.Seed + 2);
        var peakAfter = Process.GetCurrentProcess().PeakWorkingSet64;
        var finetunedPath = Path.GetFullPath(Path.Combine(outDir, FinetunedFile));
        finetuned.save(finetunedPath);

        progress("training only the last layer (the cheaper alternative)");
        using var lastLayer = NewModel(t);
        lastLayer.load(basePath);
        lastLayer.FreezeAllButLastLayer();
        var llLog = SupervisedTrainer.Train(lastLayer, ftX, ftY, FashionMnist.Pixels, t.FinetuneEpochs, t.BatchSize, t.LastLayerLearningRate, t.Seed + 2);
        var lastLayerPath = Path.GetFullPath(Path.Combine(outDir, LastLayerFile));
        lastLayer.save(lastLayerPath);

        // The base, the finetune and the test images the evaluation scores on are all pinned data.
        var dataFiles = FashionMnist.Files(t.DataDir);
        RunManifest.FileHash baseHash = t.BaseWeights is { } pinnedBase
            ? new(pinnedBase.Path, pinnedBase.Sha256, new FileInfo(pinnedBase.Path).Length)
            : RunManifest.Hash(basePath);
        var manifest = SplitRunFolder.WriteConfigAndManifest(outDir, t, [baseHash], [finetunedPath], dataFiles, t.Seed);
        // Backprop: one forward per step; ES: one per antithetic candidate (2 × population) per generation, and no backward
        // pass, so no gradients to measure.
        var summary = SplitRunFolder.WriteSummary(outDir, manifest, finetuned, ftLog, es ? "es" : "backprop", (int)ftLog.Steps,
            forwardPasses: es ? ftLog.Steps * 2 * t.EsPopulation : ftLog.Steps, trainPositions: ftLog.Steps * (es ? t.EsBatch : t.BatchSize),
            peakAfter, PlannedLedger(finetuned.ParameterCount, t), measuredGradients: !es);
        return new ClassSplitRun(t, basePath, finetunedPath, lastLayerPath, baseLog, ftLog, llLog, summary);
    }

    /// <summary>The recipe's MLP (784 → hidden → 10); with <paramref name="weights"/>, loaded from that file.</summary>
    public static MlpClassifier NewModel(ClassSplitTraining t, string? weights = null)
    {
        var model = new MlpClassifier([FashionMnist.Pixels, t.Hidden, Classes]);
        if (weights is not null) model.load(weights);
        return model;
    }

    /// <summary>
    /// Analytic fp32 ledger of the finetune. Backprop (AdamW): weights, gradients, two AdamW moments and one batch's
    /// activations (input, hidden pre/post ReLU, logits, and their gradients). ES (<see cref="LearningRules.EsRule"/>
    /// in place with Adam): weights, one perturbation buffer, the gradient estimate and the .grad copy the optimizer reads,
    /// Adam's two moments and one forward pass's activations (no backward, no stored graph).
    /// </summary>
    public static IReadOnlyList<LedgerEntry> PlannedLedger(long parameters, ClassSplitTraining t)
    {
        long perImage = (FashionMnist.Pixels + 2L * t.Hidden + Classes) * 4;
        return t.Rule == LearningRule.Es
            ? RecipeMemory.EsWithAdam(parameters, t.EsBatch * perImage)
            : [.. RecipeMemory.FullAdamW(parameters), RecipeMemory.BatchActivations(t.BatchSize * perImage * 2)];
    }

    private static void Check(ClassSplitTraining t)
    {
        if (t.Rule is not (LearningRule.Backprop or LearningRule.Es))
            throw new InputError(TrainParameters.Rule, $"the class split finetunes by backprop or es, not {t.Rule}", $"Use {TrainParameters.Rule} backprop or {TrainParameters.Rule} es.");
        if (t.RetainedClasses.Count == 0 || t.TargetClasses.Count == 0 || t.RetainedClasses.Concat(t.TargetClasses).Any(c => c is < 0 or >= Classes))
            throw new InputError(RunParameters.Tasks, "the class split needs retained and target Fashion-MNIST classes, each 0-9", "Declare at least one retained and one target class.");
        if (t.RetainedClasses.Intersect(t.TargetClasses).Any())
            throw new InputError(RunParameters.Tasks, $"class {t.RetainedClasses.Intersect(t.TargetClasses).First()} is both retained and target", "Put each class in one task.");
    }
}
