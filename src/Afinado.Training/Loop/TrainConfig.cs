using System.Text.Json;
using System.Text.Json.Serialization;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Training.Loop;

/// <summary>
/// Everything that determines a run, fully resolved (recipe defaults and flags merged). Saved as
/// <c>RUN_DIR/run-config.json</c>; <c>--resume</c> rebuilds the run from it, so a resumed run is the same run. Its
/// choices are the planner's types (method, rule, optimizer, attention: <see cref="TrainVocabulary"/>), so
/// <c>afinado plan</c> and <c>afinado train</c> describe one job in one vocabulary.
/// </summary>
public sealed record TrainConfig
{
    /// <summary>Model folder (config.json + safetensors) to start from, or null to start from <see cref="ModelConfigJson"/> with random weights.</summary>
    public string? BaseModel { get; init; }
    /// <summary>Hugging Face config.json text of the model (copied from the base folder, or a pretraining preset).</summary>
    public required string ModelConfigJson { get; init; }

    /// <summary><c>fortunes-en</c>, <c>fortunes-es</c>, or a .txt/.jsonl path.</summary>
    public required string Data { get; init; }
    /// <summary>English fortune category to restrict to (e.g. <c>science</c>), or null for all.</summary>
    public string? Category { get; init; }
    public string Tokenizer { get; init; } = "byte";
    public int SequenceLength { get; init; } = 128;
    public int BatchSize { get; init; } = 16;
    public int GradientAccumulation { get; init; } = 1;
    public int MaxSteps { get; init; } = 200;

    /// <summary>adamw, sgd or momentum: Afinado's own (state created at the first step, <c>Optim/</c>).</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    public double LearningRate { get; init; } = 1e-3;
    public double MinLearningRate { get; init; } = 1e-4;
    public int WarmupSteps { get; init; } = 10;
    public double WeightDecay { get; init; } = 0.1;
    public double Momentum { get; init; } = 0.9;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double Epsilon { get; init; } = 1e-8;
    public double? ClipNorm { get; init; } = 1.0;

    public TrainingMethod Method { get; init; } = TrainingMethod.Full;
    public IReadOnlyList<string> Freeze { get; init; } = [];
    // LoRA defaults are the planner's (Planner.Selection.LoraConfig), so `afinado plan` and `afinado train` mean the same
    // job when neither names them: rank 16, alpha 32, dropout 0.05, every linear layer.
    public int LoraRank { get; init; } = Defaults.Rank;
    public double LoraAlpha { get; init; } = Defaults.Alpha;
    public double LoraDropout { get; init; } = Defaults.Dropout;
    public IReadOnlyList<string> LoraTargets { get; init; } = Defaults.Targets;
    private static readonly Afinado.Planner.Selection.LoraConfig Defaults = new();

    /// <summary>backprop, es, guided-es or dfa; es with the sgd optimizer is MeZO-style direct ES (the planner's es-direct).</summary>
    public LearningRule Rule { get; init; } = LearningRule.Backprop;
    /// <summary>ES / Guided ES antithetic pairs per step (population 2·pairs = forward passes per step). Memory does not grow
    /// with it: members are evaluated one at a time, in place, from regenerated noise.</summary>
    public int EsPairs { get; init; } = 4;
    /// <summary>ES perturbation scale per coordinate (ε = σ·z). Guided ES uses the same per-coordinate scale (σ_GES = σ·√n).</summary>
    public double EsSigma { get; init; } = 1e-2;
    /// <summary>ES noise rank: 0 = dense Gaussian (OpenAI-ES / MeZO); r ≥ 1 = low-rank ε = σ·A·Bᵀ/√r per weight matrix
    /// (EGGROLL). Memory is unchanged: members are still evaluated in place from one regenerated perturbation buffer.</summary>
    public int EsRank { get; init; }
    /// <summary>Guided ES surrogate gradient: <c>dfa</c> (no backward chain) or <c>stale-backprop</c> (recomputed every 10 steps).</summary>
    public string Surrogate { get; init; } = "dfa";

    /// <summary>Peak learning rate <c>afinado train --rule es</c> uses when no --optimizer is given (MeZO-style SGD on the
    /// raw ES estimate, LoRA on fortunes-es: 0.3 diverged within 12 steps, 1e-2 moved the loss by only 0.005 in 12).</summary>
    public const double EsDirectLearningRate = 5e-2;
    public AttentionKernel Attention { get; init; } = AttentionKernel.Sdpa;
    public bool GradientCheckpointing { get; init; }

    /// <summary>libtorch intra-op threads (null = its default, one per core). On a machine shared with other busy
    /// processes, 1 is far faster: OpenMP barriers wait for descheduled threads (measured 20× on 2 shared cores).</summary>
    public int? Threads { get; init; }

    public int EvalEvery { get; init; } = 50;
    public int EvalBatches { get; init; } = 8;
    public int CheckpointEvery { get; init; } = 50;
    public long Seed { get; init; } = 1337;

    /// <summary>The JSON style of run folders (run-config, manifest, summary, checkpoint state); NaN/Infinity are written as null.</summary>
    public static readonly JsonSerializerOptions Json = WithWords(Afinado.Planner.FiniteJson.AddTo(new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    }));

    private static JsonSerializerOptions WithWords(JsonSerializerOptions o)
    {
        foreach (var c in TrainVocabulary.Converters()) o.Converters.Add(c);
        return o;
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);
    public static TrainConfig FromJson(string json) => JsonSerializer.Deserialize<TrainConfig>(json, Json)!;
}
