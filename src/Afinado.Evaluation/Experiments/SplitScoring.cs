using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;
using Afinado.Training.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// What the split evaluations share: the three models a split recipe trained (base, finetuned, last-layer alternative)
/// scored on each task, the comparison and verdict, and <c>eval.json</c> written beside the recipe's files.
/// </summary>
internal static class SplitScoring
{
    /// <summary>The cheaper alternative's model name in scores, predictions and reports.</summary>
    public const string LastLayer = "last-layer";

    public sealed record Models(nn.Module<Tensor, Tensor> Base, nn.Module<Tensor, Tensor> Finetuned, nn.Module<Tensor, Tensor> LastLayer);

    /// <summary>Scores base and finetuned on every task and the alternative on the target (the order of
    /// <paramref name="tasks"/>: target first), writes <c>predictions/</c>, and compares.</summary>
    /// <param name="lastLayerLabel">How the verdict names the alternative ("training only the last layer").</param>
    public static (IReadOnlyList<TaskEvaluation> Tasks, IReadOnlyList<BaselineGain> Gains, ForgettingSummary? Forgetting, Verdict Verdict) ScoreAndCompare(
        IEnumerable<IEvalTask> tasks, Models models, string lastLayerLabel, FinetuneCost cost, VerdictPolicy policy, int bins, int resamples, int seed, string outDir)
    {
        var scores = new List<IReadOnlyDictionary<string, TaskScores>>();
        foreach (var task in tasks)
        {
            var byModel = new Dictionary<string, TaskScores>
            {
                [FinetuneComparison.Base] = task.Score(models.Base, FinetuneComparison.Base),
                [FinetuneComparison.Finetuned] = task.Score(models.Finetuned, FinetuneComparison.Finetuned),
            };
            if (task.Info.Role == TaskRole.Target) byModel[LastLayer] = task.Score(models.LastLayer, LastLayer);
            scores.Add(byModel);
        }
        Predictions.PredictionWriter.Write(outDir, scores);
        return FinetuneComparison.Compare(scores, new Dictionary<string, string> { [LastLayer] = lastLayerLabel }, cost, policy, bins, resamples, seed);
    }

    /// <summary>The evaluation result of a run (identified by its manifest), written as <c>eval.json</c>.</summary>
    public static EvaluationResult Write(string outDir, RunManifest manifest, string description, FinetuneCost cost,
        (IReadOnlyList<TaskEvaluation> Tasks, IReadOnlyList<BaselineGain> Gains, ForgettingSummary? Forgetting, Verdict Verdict) comparison)
    {
        var result = new EvaluationResult
        {
            ResultKey = PinnedIdentity.ResultKey(manifest),
            BaseSha256 = manifest.BaseSha256!,
            FinetunedSha256 = manifest.OutputSha256,
            Description = description,
            Tasks = comparison.Tasks,
            Gains = comparison.Gains,
            Forgetting = comparison.Forgetting,
            Verdict = comparison.Verdict,
            Cost = cost,
        };
        File.WriteAllText(Path.Combine(outDir, RunDirectory.EvaluationFile), EvalJson.Serialize(result));
        return result;
    }
}
