using Afinado.Evaluation.Metrics;

namespace Afinado.Evaluation.Tests.Metrics;

public class PairedBootstrapTests
{
    [Fact]
    public void Interval_covers_the_true_difference_about_95_percent_of_the_time()
    {
        // 200 independent synthetic experiments with a known true difference of 0.1 between paired per-item scores.
        // Binomial sd of the coverage at p = 0.95 over 200 runs is 0.015; percentile intervals run slightly narrow
        // at n = 100, so accept [0.90, 0.99] (about ±3 sd).
        const double trueDiff = 0.1;
        var rng = new Random(7);
        int covered = 0;
        for (int rep = 0; rep < 200; rep++)
        {
            var a = new double[100];
            var b = new double[100];
            for (int i = 0; i < a.Length; i++)
            {
                a[i] = Gaussian(rng);                       // item difficulty shared by both models
                b[i] = a[i] + trueDiff + 0.5 * Gaussian(rng);
            }
            if (PairedBootstrap.MeanDifference(a, b, resamples: 1000, seed: rep).Covers(trueDiff)) covered++;
        }
        var coverage = covered / 200.0;
        Assert.InRange(coverage, 0.90, 0.99);
    }

    [Fact]
    public void Same_seed_gives_the_same_interval_and_the_point_is_the_plain_difference()
    {
        double[] a = [1, 0, 1, 1, 0, 1, 0, 1];
        double[] b = [1, 1, 1, 1, 0, 1, 1, 1];
        var x = PairedBootstrap.MeanDifference(a, b, seed: 3);
        var y = PairedBootstrap.MeanDifference(a, b, seed: 3);
        Assert.Equal(x, y);
        Assert.Equal(0.25, x.Value, 12);
        Assert.True(x.Lower <= x.Value && x.Value <= x.Upper);
        Assert.True(x.Lower >= 0); // b is never worse than a on any item, so no resample can favour a
    }

    [Fact]
    public void Unpaired_inputs_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => PairedBootstrap.MeanDifference([1.0, 2.0], [1.0]));
    }

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
