using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// The language-modelling split: a byte-level window LM learns English fortune categories (the retained tasks), then
/// finetuning (full backprop) learns Spanish fortunes (the target); the cheaper alternative trains only the output
/// layer. Scores are per-token loss on held-out fortunes of each category. Sizes default to a seconds-long run.
/// </summary>
public sealed record FortuneSplitOptions
{
    public const string FortunesDir = "/usr/share/games/fortunes";

    public IReadOnlyList<TaskSpec> Tasks { get; init; } =
    [
        new("spanish", TaskRole.Target, TaskInfo.LanguageModelling, Text: $"{FortunesDir}/es"),
        new("computers", TaskRole.Retained, TaskInfo.LanguageModelling, Text: $"{FortunesDir}/computers"),
        new("science", TaskRole.Retained, TaskInfo.LanguageModelling, Text: $"{FortunesDir}/science"),
        new("literature", TaskRole.Retained, TaskInfo.LanguageModelling, Text: $"{FortunesDir}/literature"),
    ];
    public int TrainItemsPerTask { get; init; } = 200;
    public int TestItemsPerTask { get; init; } = 50;
    /// <summary>Items are truncated to this many UTF-8 bytes (tokens) to bound the cost.</summary>
    public int MaxTokens { get; init; } = 200;
    public int Context { get; init; } = 4;
    public int Embedding { get; init; } = 32;
    public int Hidden { get; init; } = 128;
    public int BaseSteps { get; init; } = 300;
    public int FinetuneSteps { get; init; } = 150;
    public int Batch { get; init; } = 32;
    public int Window { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public double LastLayerLearningRate { get; init; } = 1e-2;
    public int Seed { get; init; } = 1;
    public int Resamples { get; init; } = 1000;
    public int Bins { get; init; } = Calibration.DefaultBins;
    public VerdictPolicy Policy { get; init; } = VerdictPolicy.Default;
    /// <summary>Also estimate the GPU-hours of the same finetune (same tokens) on this model (catalog id or config.json).</summary>
    public string? ScaleModel { get; init; }
    public double ScaleTflops { get; init; } = ScaleCostEstimate.DefaultSustainedTflops;
}
