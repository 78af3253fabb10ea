using Afinado.Training.LearningRules;
using Afinado.Training.LearningRules.Toy;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.Tests.LearningRules;

public class GuidedEsRuleTests
{
    private static Tensor RunGuided(GuidedEsOptions options, double lr, int steps)
    {
        using var toy = new LeastSquaresToy(n: 60, m: 120, seed: 4);
        using var rule = new GuidedEsRule(toy, new BiasedSurrogate(new StaleBackpropSurrogate(toy), toy.UnitBias), TestOptimizers.Sgd(toy), options);
        for (int i = 0; i < steps; i++) rule.Step(RuleStep.Of(i, lr, default));
        return toy.X.detach().clone();
    }

    private static Tensor RunEs(EsOptions options, double lr, int steps)
    {
        using var toy = new LeastSquaresToy(n: 60, m: 120, seed: 4);
        using var rule = new EsRule(toy, TestOptimizers.Sgd(toy), options);
        for (int i = 0; i < steps; i++) rule.Step(RuleStep.Of(i, lr, default));
        return toy.X.detach().clone();
    }

    [Fact]
    public void Guided_es_with_alpha_one_equals_vanilla_es_on_the_same_seeds()
    {
        const int n = 60, steps = 20;
        const double sigma = 0.1, lr = 0.2;
        // Guided ES, α = 1: ε = σ/√n·z, g = β/(2σ²P)·Σ ε·Δf. OpenAI-ES without shaping at σ_ES = σ/√n: g = 1/(2Pσ_ES)·Σ z·Δf,
        // i.e. n/β times larger. So β = n must give the same trajectory, and β = 1 the same one with the ES step size / n.
        var es = new EsOptions { Sigma = sigma / Math.Sqrt(n), Pairs = 3, Shaping = FitnessShaping.None, Seed = 9 };
        var guided = new GuidedEsOptions { Sigma = sigma, Alpha = 1, Pairs = 3, Seed = 9 };

        var g1 = RunGuided(guided with { Beta = n }, lr, steps);
        var e1 = RunEs(es, lr, steps);
        Assert.True(g1.allclose(e1, rtol: 1e-9, atol: 1e-12), $"β=n: max diff {(g1 - e1).abs().max().ToDouble():E2}");

        var g2 = RunGuided(guided with { Beta = 1 }, lr, steps);
        var e2 = RunEs(es, lr / n, steps);
        Assert.True(g2.allclose(e2, rtol: 1e-9, atol: 1e-12), $"β=1: max diff {(g2 - e2).abs().max().ToDouble():E2}");
        Assert.True(g1.abs().sum().ToDouble() > 0, "the runs must actually move the parameters");
    }

    [Fact]
    public void Guided_es_with_alpha_below_one_uses_the_surrogate_and_differs_from_vanilla()
    {
        var vanilla = RunGuided(new GuidedEsOptions { Sigma = 0.1, Alpha = 1, Pairs = 1, Seed = 9 }, 0.2, 5);
        var guided = RunGuided(new GuidedEsOptions { Sigma = 0.1, Alpha = 0.5, Pairs = 1, Seed = 9 }, 0.2, 5);
        Assert.False(vanilla.allclose(guided));
    }

    [Fact]
    public void Guided_es_beats_vanilla_es_and_biased_sgd_on_a_short_toy_run()
    {
        var result = GuidedEsToy.Run(new GuidedEsToyOptions { Steps = 600, N = 200, M = 400, Seed = 1 });
        double guided = result.Final(GuidedEsToyResult.GuidedEs);
        Assert.True(guided < result.Final(GuidedEsToyResult.VanillaEs), $"guided {guided} vs vanilla {result.Final(GuidedEsToyResult.VanillaEs)}");
        Assert.True(guided < result.Curves[GuidedEsToyResult.GuidedEs][0], "guided ES must lower the loss");
        Assert.Equal(3 * 600, result.ForwardPasses[GuidedEsToyResult.GuidedEs]);
    }
}
