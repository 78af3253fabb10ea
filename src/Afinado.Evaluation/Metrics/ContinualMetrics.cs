namespace Afinado.Evaluation.Metrics;

/// <summary>
/// Continual-learning summaries over a score matrix R[i, j] = score on task j after training through stage i
/// (higher is better; negate losses first). Definitions from reference learning-rules.md §3.3:
/// GEM (Lopez-Paz &amp; Ranzato 2017) for ACC and BWT, Chaudhry et al. 2018 for average forgetting.
/// For a two-stage finetune, stage 0 is the base model and stage 1 the finetuned one.
/// </summary>
public sealed record ContinualMetrics(double AverageAccuracy, double BackwardTransfer, double AverageForgetting)
{
    public static ContinualMetrics From(double[,] r)
    {
        int t = r.GetLength(0);
        if (t < 2 || r.GetLength(1) != t)
            throw new ArgumentException($"the score matrix must be square with at least 2 stages (got {r.GetLength(0)}×{r.GetLength(1)})");
        double acc = 0;
        for (int i = 0; i < t; i++) acc += r[t - 1, i];
        acc /= t;
        // BWT = (1/(T−1)) Σ_{i<T} (R_{T,i} − R_{i,i}): negative means the last stage forgot earlier tasks.
        double bwt = 0;
        for (int i = 0; i < t - 1; i++) bwt += r[t - 1, i] - r[i, i];
        bwt /= t - 1;
        // F_T = (1/(T−1)) Σ_{j<T} (max_{l<T} R_{l,j} − R_{T,j}): how far each earlier task fell from its best.
        double forgetting = 0;
        for (int j = 0; j < t - 1; j++)
        {
            double best = double.NegativeInfinity;
            for (int l = 0; l < t - 1; l++) best = Math.Max(best, r[l, j]);
            forgetting += best - r[t - 1, j];
        }
        forgetting /= t - 1;
        return new ContinualMetrics(acc, bwt, forgetting);
    }
}
