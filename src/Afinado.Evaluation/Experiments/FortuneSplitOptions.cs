using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;
using Afinado.Training.Recipes;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// The language-modelling split: the Training recipe it evaluates (<see cref="FortuneSplitRecipe"/>: a byte-level window
/// LM learns English fortune categories, the retained tasks; finetuning learns Spanish fortunes, the target; the cheaper
/// alternative trains only the output layer) and how it is scored: per-token loss on each task's held-out fortunes.
/// </summary>
public sealed record FortuneSplitOptions
{
    public IReadOnlyList<TaskSpec> Tasks { get; init; } =
        new FortuneSplitTraining().Texts.Select(t => new TaskSpec(t.Name, t.Target ? TaskRole.Target : TaskRole.Retained, TaskInfo.LanguageModelling, Text: t.Path)).ToList();
    /// <summary>The recipe's settings; its texts are the tasks' (see <see cref="FortuneSplitEvaluation.TrainingFor"/>).</summary>
    public FortuneSplitTraining Training { get; init; } = new();
    public int Resamples { get; init; } = 1000;
    public int Bins { get; init; } = Calibration.DefaultBins;
    public VerdictPolicy Policy { get; init; } = VerdictPolicy.Default;
    /// <summary>Also estimate the GPU-hours of the same finetune (same tokens) on this model (catalog id or config.json).</summary>
    public string? ScaleModel { get; init; }
    public double ScaleTflops { get; init; } = ScaleCostEstimate.DefaultSustainedTflops;
}
