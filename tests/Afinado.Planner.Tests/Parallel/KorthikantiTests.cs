using Afinado.Planner.Parallel;

namespace Afinado.Planner.Tests.Parallel;

/// <summary>The TP/SP split of the saved-tensor table reproduces Korthikanti et al.'s closed forms exactly.</summary>
public class KorthikantiTests
{
    // GPT-3 175B-like layer: s = 2048, b = 1, h = 12288, a = 96.
    private const long S = 2048, B = 1, H = 12288, A = 96;
    private static readonly double Sbh = S * B * H;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(8)]
    public void Tensor_parallel_gives_sbh_10_plus_24_over_t_plus_5as_over_ht(int t)
    {
        var rows = KorthikantiActivations.GptLayer(S, B, H, A);
        double expected = Sbh * (10 + 24.0 / t + 5.0 * A * S / (H * t));
        Assert.Equal(expected, ActivationSharding.PerRank(rows, t, sequenceParallel: false), 12.0);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(8)]
    public void Sequence_parallel_gives_sbh_over_t_times_34_plus_5as_over_h(int t)
    {
        var rows = KorthikantiActivations.GptLayer(S, B, H, A);
        double expected = Sbh / t * (34 + 5.0 * A * S / H);
        Assert.Equal(expected, ActivationSharding.PerRank(rows, t, sequenceParallel: true), 12.0);
    }

    [Fact]
    public void No_parallelism_gives_sbh_34_plus_5as_over_h_and_selective_recompute_gives_34_sbh_over_t()
    {
        Assert.Equal(Sbh * (34 + 5.0 * A * S / H), ActivationSharding.PerRank(KorthikantiActivations.GptLayer(S, B, H, A), 1, false));
        var selective = KorthikantiActivations.GptLayer(S, B, H, A, selectiveRecompute: true);
        Assert.Equal(34 * Sbh / 8, ActivationSharding.PerRank(selective, 8, sequenceParallel: true), 12.0);
        Assert.Equal(Sbh * (10 + 24.0 / 8), ActivationSharding.PerRank(selective, 8, sequenceParallel: false), 12.0);
    }
}
