using Afinado.Training.Recipes;
using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// The Fashion-MNIST class-split experiment: a base MLP learns the retained classes, finetuning (full backprop) learns
/// the target classes, and a cheaper alternative trains only the last layer on the same data. Sizes default to a
/// subsample that runs in seconds on a laptop CPU.
/// </summary>
public sealed record ClassSplitOptions
{
    public IReadOnlyList<TaskSpec> Tasks { get; init; } =
    [
        new("classes 5-9", TaskRole.Target, TaskInfo.Classification, [5, 6, 7, 8, 9]),
        new("classes 0-4", TaskRole.Retained, TaskInfo.Classification, [0, 1, 2, 3, 4]),
    ];
    public int TrainPerClass { get; init; } = 500;
    public int TestPerClass { get; init; } = 200;
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
    public int Resamples { get; init; } = 1000;
    public int Bins { get; init; } = Calibration.DefaultBins;
    public string DataDir { get; init; } = Data.FashionMnist.DefaultDir;
    public VerdictPolicy Policy { get; init; } = VerdictPolicy.Default;
    /// <summary>How the finetune learns: backprop (AdamW) or antithetic evolution strategies (forward passes only).</summary>
    public FinetuneRule Rule { get; init; } = FinetuneRule.Backprop;
    public int EsGenerations { get; init; } = 150;
    public int EsPopulation { get; init; } = 20;
    public float EsSigma { get; init; } = 0.02f;
    public double EsLearningRate { get; init; } = 0.01;
    public int EsBatch { get; init; } = 256;
    /// <summary>Start from these pinned base weights (a file saved by an earlier run) instead of training a base.</summary>
    public Runs.PinnedFile? BaseWeights { get; init; }
}

public enum FinetuneRule
{
    Backprop,
    /// <summary>Antithetic evolution strategies: no backward pass (see <see cref="EvolutionStrategyTrainer"/>).</summary>
    Es,
}
