using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// How <c>afinado eval --run RUN_DIR</c> scores a language-model run made by <c>afinado train</c>: the target is the
/// held-out (validation-split) part of the run's training data, the retained tasks are held-out English fortune
/// categories. Subset sizes bound the cost; items are truncated to <see cref="MaxTokens"/> tokens.
/// </summary>
public sealed record TrainedRunOptions
{
    public IReadOnlyList<string> RetainedCategories { get; init; } = ["computers", "science", "literature"];
    /// <summary>Held-out items scored per task (fewer when the split holds fewer).</summary>
    public int ItemsPerTask { get; init; } = 100;
    public int MaxTokens { get; init; } = 128;
    /// <summary>Supervised (prompt/completion, alpaca, chat) runs: at most this many training examples are put before each
    /// held-out prompt for the base model's few-shot alternative, fewer where the model's context cannot hold them; 0
    /// leaves the alternative out. 5, as the few-shot evaluations people quote most (MMLU's 5-shot).</summary>
    public int Shots { get; init; } = 5;
    public int Seed { get; init; } = 1;
    public int Resamples { get; init; } = 1000;
    public int Bins { get; init; } = Calibration.DefaultBins;
    public VerdictPolicy Policy { get; init; } = VerdictPolicy.Default;
}
