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
    public int Seed { get; init; } = 1;
    public int Resamples { get; init; } = 1000;
    public int Bins { get; init; } = Calibration.DefaultBins;
    public VerdictPolicy Policy { get; init; } = VerdictPolicy.Default;
}
