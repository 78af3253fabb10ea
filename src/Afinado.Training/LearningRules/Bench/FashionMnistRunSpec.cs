using Afinado.Planner.Memory;
namespace Afinado.Training.LearningRules.Bench;

/// <summary>One row of the Fashion-MNIST learning-rule table: network, rule, optimizer and budget.</summary>
public sealed record FashionMnistRunSpec
{
    public required string Id { get; init; }
    /// <summary><c>mlp</c> or <c>lenet</c>.</summary>
    public required string Network { get; init; }
    public int[] MlpWidths { get; init; } = [784, 128, 64, 10];
    /// <summary>LeNet conv channel counts (biotorch's LeNet-5: 6 and 16).</summary>
    public int[] LeNetChannels { get; init; } = [6, 16];
    /// <summary>Backprop, DFA, ES (direct with the <c>none</c> optimizer) or Guided ES; JSON spells them as the flags do.</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(RuleWordJsonConverter))]
    public required LearningRule Rule { get; init; }
    public required int Steps { get; init; }
    public int BatchSize { get; init; } = 128;
    /// <summary><c>adam</c>, <c>adamw</c> (decoupled <see cref="WeightDecay"/>), <c>sgd</c> (momentum 0.9) or <c>none</c> (direct ES).</summary>
    public string Optimizer { get; init; } = "adam";
    /// <summary>AdamW's decoupled weight decay (TorchSharp's default is 0, so it is always set explicitly).</summary>
    public double WeightDecay { get; init; }
    /// <summary>Training-time augmentation: each image is mirrored left-right with probability ½ (seeded).</summary>
    public bool HorizontalFlip { get; init; }
    /// <summary>
    /// Inputs become (x − μ)/s with the training set's global pixel mean μ and standard deviation s (test images likewise).
    /// Zero-centred inputs matter most to ES: a perturbation of W then moves pre-activations around zero instead of adding a
    /// common offset, which measurably speeds it up (bench/learning-rules/README.md).
    /// </summary>
    public bool StandardizeInputs { get; init; }
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Cosine decay of the learning rate to 0 over <see cref="Steps"/>.</summary>
    public bool CosineDecay { get; init; } = true;
    public EsOptions Es { get; init; } = new();
    public GuidedEsOptions GuidedEs { get; init; } = new();
    /// <summary>Guided ES surrogate: <c>dfa</c> or <c>stale-backprop</c>.</summary>
    public string Surrogate { get; init; } = "dfa";
    public int StaleEvery { get; init; } = 10;
    public ulong Seed { get; init; } = 1;
    /// <summary>The target this row is judged against, for the table (e.g. "≥ 91 %").</summary>
    public string Target { get; init; } = "";
}

/// <summary>What one run measured. Memory fields are 0 when the run was not measured in a tamed child process.</summary>
public sealed record FashionMnistRunResult
{
    public required FashionMnistRunSpec Spec { get; init; }
    public required long Parameters { get; init; }
    public required double TestAccuracy { get; init; }
    public required double FinalTrainLoss { get; init; }
    public required double TrainSeconds { get; init; }
    public required long Steps { get; init; }
    public required long ForwardPasses { get; init; }
    public required long BackwardPasses { get; init; }
    /// <summary>RSS after data loading, before the model exists (bytes).</summary>
    public long BaselineRssBytes { get; init; }
    /// <summary>VmHWM over model construction and training, reset at the baseline (bytes).</summary>
    public long PeakRssBytes { get; init; }
    public bool MallocTamed { get; init; }
    /// <summary>Steps of the run the memory fields come from (a short tamed child run may measure a long row).</summary>
    public long MemorySteps { get; init; }
    /// <summary><see cref="Memory.RuleMemory"/>'s predicted peak above the baseline (MLP rows only; 0 otherwise).</summary>
    public long PredictedPeakBytes { get; init; }
    public long PeakAboveBaselineBytes => PeakRssBytes - BaselineRssBytes;
}
