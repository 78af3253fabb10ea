namespace Afinado.Evaluation.Metrics;

/// <summary>A point estimate with a confidence interval.</summary>
public sealed record Estimate(double Value, double Lower, double Upper, double Level, int Resamples)
{
    /// <summary>True when the interval lies entirely above zero.</summary>
    public bool AboveZero => Lower > 0;
    /// <summary>True when the interval lies entirely below zero.</summary>
    public bool BelowZero => Upper < 0;
    public bool Covers(double x) => Lower <= x && x <= Upper;
    public Estimate Negate() => new(-Value, -Upper, -Lower, Level, Resamples);
    public override string ToString() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Value:+0.0000;-0.0000;0} ({Level * 100:0.#}% CI {Lower:+0.0000;-0.0000;0} … {Upper:+0.0000;-0.0000;0})");
}

/// <summary>
/// Paired bootstrap for the difference between two models scored on the SAME items: each resample draws n item
/// indices with replacement and evaluates both models on that one draw, so item difficulty cancels in the difference.
/// Percentile interval; seeded, so the same inputs and seed give the same interval.
/// </summary>
public static class PairedBootstrap
{
    public const int DefaultResamples = 2000;

    /// <summary>CI for mean(other) − mean(baseline) over per-item scores (accuracy 0/1, per-item loss, …).</summary>
    public static Estimate MeanDifference(IReadOnlyList<double> baseline, IReadOnlyList<double> other, int resamples = DefaultResamples, int seed = 0, double level = 0.95)
    {
        if (baseline.Count != other.Count)
            throw new ArgumentException($"paired bootstrap needs the same items for both models ({baseline.Count} vs {other.Count} scores)");
        return Difference(baseline.Count, idx => Mean(baseline, idx), idx => Mean(other, idx), resamples, seed, level);
    }

    /// <summary>
    /// CI for statistic(other) − statistic(baseline) where each statistic is computed from a multiset of item indices
    /// (e.g. ECE, or total loss / total tokens). The point estimate uses all items once.
    /// </summary>
    public static Estimate Difference(int items, Func<int[], double> baseline, Func<int[], double> other, int resamples = DefaultResamples, int seed = 0, double level = 0.95)
    {
        if (items < 1) throw new ArgumentException("paired bootstrap needs at least one item");
        if (resamples < 10) throw new ArgumentOutOfRangeException(nameof(resamples), resamples, "use at least 10 resamples");
        if (!(level > 0 && level < 1)) throw new ArgumentOutOfRangeException(nameof(level), level, "level must lie in (0, 1)");
        var all = Enumerable.Range(0, items).ToArray();
        var point = other(all) - baseline(all);
        var rng = new Random(seed);
        var diffs = new double[resamples];
        var idx = new int[items];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < items; i++) idx[i] = rng.Next(items);
            diffs[r] = other(idx) - baseline(idx);
        }
        Array.Sort(diffs);
        var alpha = (1 - level) / 2;
        return new Estimate(point, Quantile(diffs, alpha), Quantile(diffs, 1 - alpha), level, resamples);
    }

    /// <summary>Linear-interpolation quantile of sorted values (type 7, as numpy's default).</summary>
    internal static double Quantile(double[] sorted, double q)
    {
        var h = (sorted.Length - 1) * q;
        var lo = (int)Math.Floor(h);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    private static double Mean(IReadOnlyList<double> values, int[] idx)
    {
        double s = 0;
        foreach (var i in idx) s += values[i];
        return s / idx.Length;
    }
}
