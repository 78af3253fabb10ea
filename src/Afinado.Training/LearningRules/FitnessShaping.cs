namespace Afinado.Training.LearningRules;

/// <summary>How raw losses become the weights of the ES estimate.</summary>
public enum FitnessShaping
{
    /// <summary>Raw losses: the estimate is the unbiased Gaussian-smoothing gradient (needed for exactness tests).</summary>
    None,

    /// <summary>OpenAI-ES: ranks over the whole population mapped to [-0.5, 0.5]; invariant to loss scale and outliers.</summary>
    CenteredRank,
}

public static class FitnessShapingMath
{
    /// <summary>
    /// Centered ranks of <paramref name="values"/>: rank/(N−1) − 0.5, smallest value → −0.5. Ties are broken by position so
    /// the result is deterministic (as in openai/evolution-strategies-starter's compute_centered_ranks).
    /// </summary>
    public static double[] CenteredRanks(IReadOnlyList<double> values)
    {
        int n = values.Count;
        var result = new double[n];
        if (n == 1) return result;
        var order = Enumerable.Range(0, n).OrderBy(i => values[i]).ThenBy(i => i).ToArray();
        for (int r = 0; r < n; r++) result[order[r]] = (double)r / (n - 1) - 0.5;
        return result;
    }

    /// <summary>Shapes the plus/minus losses of P pairs together (2P values) and returns (shaped⁺, shaped⁻).</summary>
    public static (double[] Plus, double[] Minus) Apply(FitnessShaping shaping, double[] plus, double[] minus)
    {
        if (shaping == FitnessShaping.None) return ((double[])plus.Clone(), (double[])minus.Clone());
        var all = plus.Concat(minus).ToArray();
        var ranked = CenteredRanks(all);
        return (ranked[..plus.Length], ranked[plus.Length..]);
    }
}
