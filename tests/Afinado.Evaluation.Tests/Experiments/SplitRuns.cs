using Afinado.Evaluation.Experiments;
using Afinado.Training.Recipes;

namespace Afinado.Evaluation.Tests.Experiments;

/// <summary>An experiment as <c>afinado eval</c> runs it: the Training recipe trains and writes the run folder, then
/// Evaluation scores what it wrote.</summary>
internal static class SplitRuns
{
    public static EvaluationResult ClassSplit(ClassSplitOptions options, string dir, Action<string>? progress = null) =>
        ClassSplitEvaluation.Evaluate(options, ClassSplitRecipe.Run(ClassSplitEvaluation.TrainingFor(options), dir, progress), dir, progress);

    public static EvaluationResult FortuneSplit(FortuneSplitOptions options, string dir, Action<string>? progress = null) =>
        FortuneSplitEvaluation.Evaluate(options, FortuneSplitRecipe.Run(FortuneSplitEvaluation.TrainingFor(options), dir, progress), dir, progress);
}
