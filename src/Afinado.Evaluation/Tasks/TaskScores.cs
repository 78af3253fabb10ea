using Afinado.Evaluation.Metrics;

namespace Afinado.Evaluation.Tasks;

/// <summary>
/// One item of a task as scored by one model. The task score is Σ numerator / Σ denominator over items, which covers
/// accuracy (numerator 1 when right, denominator 1) and per-token loss (numerator = summed NLL of the item's tokens,
/// denominator = its token count). <paramref name="Predictions"/> feed calibration (one per class decision or per token).
/// </summary>
public sealed record ItemResult(double Numerator, double Denominator, IReadOnlyList<Prediction> Predictions);

/// <summary>Per-item results of one model on one task; items are in the task's fixed order so models pair up.</summary>
public sealed record TaskScores(TaskInfo Task, string Model, IReadOnlyList<ItemResult> Items)
{
    public double Score => ScoreOf(Enumerable.Range(0, Items.Count));

    public double ScoreOf(IEnumerable<int> indices)
    {
        double num = 0, den = 0;
        foreach (var i in indices)
        {
            num += Items[i].Numerator;
            den += Items[i].Denominator;
        }
        return num / den;
    }

    public IReadOnlyList<Prediction> PredictionsOf(IEnumerable<int> indices) => indices.SelectMany(i => Items[i].Predictions).ToArray();

    public IReadOnlyList<Prediction> AllPredictions => Items.SelectMany(i => i.Predictions).ToArray();
}
