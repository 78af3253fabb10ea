namespace Afinado.Evaluation.Metrics;

/// <summary>
/// Calibration metrics over a set of predictions (Guo et al. 2017; Kadavath et al. 2022; reference learning-rules.md §4).
/// Every function is pure: same predictions in, same numbers out.
/// </summary>
public static class Calibration
{
    public const int DefaultBins = 15;

    /// <summary>
    /// Reliability diagram data: <paramref name="bins"/> equal-width bins B_m = ((m−1)/M, m/M] on the top-class
    /// probability (a confidence of exactly 0 goes into the first bin). Empty bins are returned with Count 0.
    /// </summary>
    public static IReadOnlyList<ReliabilityBin> Reliability(IReadOnlyList<Prediction> predictions, int bins = DefaultBins)
    {
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), bins, "at least one bin is needed");
        var count = new int[bins];
        var confSum = new double[bins];
        var correct = new int[bins];
        foreach (var p in predictions)
        {
            var m = BinIndex(p.Confidence, bins);
            count[m]++;
            confSum[m] += p.Confidence;
            if (p.Correct) correct[m]++;
        }
        var result = new ReliabilityBin[bins];
        for (int m = 0; m < bins; m++)
        {
            result[m] = count[m] == 0
                ? new ReliabilityBin((double)m / bins, (double)(m + 1) / bins, 0, 0, 0)
                : new ReliabilityBin((double)m / bins, (double)(m + 1) / bins, count[m], confSum[m] / count[m], (double)correct[m] / count[m]);
        }
        return result;
    }

    /// <summary>Bin of confidence c in ((m−1)/M, m/M]: ceil(c·M) − 1, with c = 0 in the first bin.</summary>
    internal static int BinIndex(double confidence, int bins)
    {
        if (double.IsNaN(confidence) || confidence < 0 || confidence > 1)
            throw new ArgumentOutOfRangeException(nameof(confidence), confidence, "confidence must lie in [0, 1]");
        var m = (int)Math.Ceiling(confidence * bins) - 1;
        return Math.Clamp(m, 0, bins - 1);
    }

    /// <summary>Expected calibration error: Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)|; empty bins contribute nothing.</summary>
    public static double ExpectedCalibrationError(IReadOnlyList<Prediction> predictions, int bins = DefaultBins)
    {
        RequireAny(predictions);
        return Reliability(predictions, bins).Sum(b => (double)b.Count / predictions.Count * b.Gap);
    }

    /// <summary>Maximum calibration error: the largest gap over the non-empty bins.</summary>
    public static double MaximumCalibrationError(IReadOnlyList<Prediction> predictions, int bins = DefaultBins)
    {
        RequireAny(predictions);
        return Reliability(predictions, bins).Where(b => b.Count > 0).Max(b => b.Gap);
    }

    /// <summary>
    /// Brier score. When every prediction carries its label and full distribution this is the multi-class score
    /// (1/n)·Σ_i Σ_k (p_ik − 1[k = y_i])², range [0, 2] (what lm-evaluation-harness reports). Otherwise it is the
    /// binary score on confidence (1/n)·Σ_i (conf_i − 1[correct_i])², range [0, 1]. <see cref="BrierKind"/> says which.
    /// </summary>
    public static double Brier(IReadOnlyList<Prediction> predictions) => Brier(predictions, out _);

    public static double Brier(IReadOnlyList<Prediction> predictions, out BrierKind kind)
    {
        RequireAny(predictions);
        kind = predictions.All(p => p.HasDistribution) ? BrierKind.MultiClass : BrierKind.BinaryOnConfidence;
        double sum = 0;
        foreach (var p in predictions)
        {
            if (kind == BrierKind.MultiClass)
            {
                var probs = p.Probabilities!;
                for (int k = 0; k < probs.Count; k++)
                {
                    var target = k == p.Label ? 1.0 : 0.0;
                    sum += (probs[k] - target) * (probs[k] - target);
                }
            }
            else
            {
                var target = p.Correct ? 1.0 : 0.0;
                sum += (p.Confidence - target) * (p.Confidence - target);
            }
        }
        return sum / predictions.Count;
    }

    /// <summary>
    /// AUROC of confidence for separating right from wrong answers: the probability that a random correct prediction
    /// has higher confidence than a random wrong one, ties counting one half (Mann–Whitney U with mid-ranks).
    /// Null when all predictions are right or all are wrong (the quantity is undefined then).
    /// </summary>
    public static double? Auroc(IReadOnlyList<Prediction> predictions)
    {
        RequireAny(predictions);
        long positives = predictions.Count(p => p.Correct);
        long negatives = predictions.Count - positives;
        if (positives == 0 || negatives == 0) return null;
        var order = Enumerable.Range(0, predictions.Count).OrderBy(i => predictions[i].Confidence).ToArray();
        double positiveRankSum = 0;
        for (int start = 0; start < order.Length;)
        {
            int end = start;
            while (end + 1 < order.Length && predictions[order[end + 1]].Confidence == predictions[order[start]].Confidence) end++;
            var midRank = (start + end) / 2.0 + 1; // ranks are 1-based; tied items share the mean of their ranks
            for (int j = start; j <= end; j++)
                if (predictions[order[j]].Correct) positiveRankSum += midRank;
            start = end + 1;
        }
        var u = positiveRankSum - positives * (positives + 1) / 2.0;
        return u / ((double)positives * negatives);
    }

    /// <summary>
    /// Selective accuracy at a coverage c in (0, 1]: the model answers only its k = ceil(c·n) most confident items and
    /// abstains on the rest. Items tied in confidence at the cut-off contribute their group's mean accuracy pro rata,
    /// so the result does not depend on the order of the input.
    /// </summary>
    public static double SelectiveAccuracy(IReadOnlyList<Prediction> predictions, double coverage)
    {
        RequireAny(predictions);
        if (!(coverage > 0 && coverage <= 1)) throw new ArgumentOutOfRangeException(nameof(coverage), coverage, "coverage must lie in (0, 1]");
        var k = (int)Math.Ceiling(coverage * predictions.Count - 1e-9);
        k = Math.Clamp(k, 1, predictions.Count);
        var groups = predictions.GroupBy(p => p.Confidence).OrderByDescending(g => g.Key);
        double taken = 0, correct = 0;
        foreach (var g in groups)
        {
            var size = g.Count();
            var groupCorrect = g.Count(p => p.Correct);
            var take = Math.Min(size, k - taken);
            correct += take * groupCorrect / (double)size;
            taken += take;
            if (taken >= k) break;
        }
        return correct / k;
    }

    public static readonly IReadOnlyList<double> DefaultCoverages = [0.5, 0.8, 1.0];

    /// <summary>All calibration metrics in one summary.</summary>
    public static CalibrationSummary Summarize(IReadOnlyList<Prediction> predictions, int bins = DefaultBins, IReadOnlyList<double>? coverages = null)
    {
        RequireAny(predictions);
        var brier = Brier(predictions, out var kind);
        return new CalibrationSummary(
            predictions.Count,
            bins,
            predictions.Average(p => p.Correct ? 1.0 : 0.0),
            predictions.Average(p => p.Confidence),
            ExpectedCalibrationError(predictions, bins),
            MaximumCalibrationError(predictions, bins),
            brier,
            kind,
            Auroc(predictions),
            (coverages ?? DefaultCoverages).Select(c => new SelectivePoint(c, SelectiveAccuracy(predictions, c))).ToArray(),
            Reliability(predictions, bins));
    }

    private static void RequireAny(IReadOnlyList<Prediction> predictions)
    {
        if (predictions.Count == 0) throw new ArgumentException("calibration metrics need at least one prediction", nameof(predictions));
    }
}

public enum BrierKind
{
    /// <summary>(1/n)·Σ_i Σ_k (p_ik − y_ik)², range [0, 2].</summary>
    MultiClass,
    /// <summary>(1/n)·Σ_i (conf_i − correct_i)², range [0, 1]: used when the full distribution is not given.</summary>
    BinaryOnConfidence,
}

public sealed record SelectivePoint(double Coverage, double Accuracy);

public sealed record CalibrationSummary(
    int Count,
    int Bins,
    double Accuracy,
    double MeanConfidence,
    double Ece,
    double Mce,
    double Brier,
    BrierKind BrierKind,
    double? Auroc,
    IReadOnlyList<SelectivePoint> Selective,
    IReadOnlyList<ReliabilityBin> Reliability);
