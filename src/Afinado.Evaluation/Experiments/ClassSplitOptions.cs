using Afinado.Training.Recipes;
using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// The Fashion-MNIST class-split experiment: the Training recipe it evaluates (<see cref="ClassSplitRecipe"/>: a base
/// MLP learns the retained classes, finetuning learns the target classes, the cheaper alternative trains only the last
/// layer) and how its three models are scored. The tasks say which classes each side learns.
/// </summary>
public sealed record ClassSplitOptions
{
    public IReadOnlyList<TaskSpec> Tasks { get; init; } =
    [
        new("classes 5-9", TaskRole.Target, TaskInfo.Classification, [5, 6, 7, 8, 9]),
        new("classes 0-4", TaskRole.Retained, TaskInfo.Classification, [0, 1, 2, 3, 4]),
    ];
    /// <summary>The recipe's settings; its classes are the tasks' (see <see cref="ClassSplitEvaluation.TrainingFor"/>).</summary>
    public ClassSplitTraining Training { get; init; } = new();
    public int TestPerClass { get; init; } = 200;
    public int Resamples { get; init; } = 1000;
    public int Bins { get; init; } = Calibration.DefaultBins;
    public VerdictPolicy Policy { get; init; } = VerdictPolicy.Default;
}
