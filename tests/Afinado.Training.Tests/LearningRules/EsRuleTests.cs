using Afinado.Training.LearningRules;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.Tests.LearningRules;

public class EsRuleTests
{
    /// <summary>One ES step with SGD lr 1 moves θ by exactly −g, so the estimate can be read off the parameters.</summary>
    private static Tensor Estimate(QuadraticModel model, EsOptions options)
    {
        var before = model.X.detach().clone();
        using var rule = new EsRule(model, TestOptimizers.Sgd(model), options);
        rule.Step(RuleStep.Of(0, 1.0, default));
        var g = before - model.X.detach();
        using (no_grad()) model.X.copy_(before);
        return g;
    }

    private static double RelativeError(Tensor estimate, Tensor truth) => ((estimate - truth).norm() / truth.norm()).ToDouble();

    [Fact]
    public void Estimate_on_a_quadratic_converges_to_the_true_gradient_as_the_population_grows()
    {
        using var model = new QuadraticModel(10);
        var truth = model.TrueGradient();
        var errors = new[] { 10, 100, 1000, 10_000 }
            .Select(p => RelativeError(Estimate(model, new EsOptions { Sigma = 0.05, Pairs = p, Shaping = FitnessShaping.None, PopulationChunkPairs = 512, Seed = 3 }), truth))
            .ToArray();
        // Monte-Carlo error of (1/P)·Σ z zᵀ∇f shrinks like √((n+1)/P): ≈1.0, 0.33, 0.1, 0.03.
        Assert.True(errors[3] < 0.1, $"error at P=10000 is {errors[3]:F3}");
        Assert.True(errors[0] > 3 * errors[3], $"errors {string.Join(", ", errors.Select(e => e.ToString("F3")))} do not shrink");
        Assert.True(errors[1] > errors[3], $"errors {string.Join(", ", errors.Select(e => e.ToString("F3")))} do not shrink");
    }

    [Fact]
    public void Batched_population_evaluation_equals_member_by_member_evaluation()
    {
        using var model = new QuadraticModel(30);
        var options = new EsOptions { Sigma = 0.1, Pairs = 24, Seed = 11 };
        var batched = Estimate(model, options with { PopulationChunkPairs = 5 });
        var inPlace = Estimate(model, options with { PopulationChunkPairs = 0 });
        Assert.True(batched.allclose(inPlace, rtol: 1e-9, atol: 1e-12), $"max diff {(batched - inPlace).abs().max().ToDouble():E2}");
    }

    [Fact]
    public void Same_seed_reproduces_the_trajectory_and_another_seed_does_not()
    {
        Tensor Run(ulong seed)
        {
            using var model = new QuadraticModel(40);
            using var rule = new EsRule(model, TestOptimizers.Adam(model), new EsOptions { Sigma = 0.1, Pairs = 8, Seed = seed });
            for (int i = 0; i < 5; i++) rule.Step(RuleStep.Of(i, 0.05, default));
            return model.X.detach().clone();
        }
        var a = Run(1);
        var b = Run(1);
        var c = Run(2);
        Assert.True(a.Equals(b), "same seed must give bit-identical parameters");
        Assert.False(a.allclose(c), "a different seed must give a different trajectory");
    }

    [Fact]
    public void Es_with_adam_and_centered_ranks_lowers_a_quadratic()
    {
        using var model = new QuadraticModel(50);
        double start = model.Loss(default).ToDouble();
        using var rule = new EsRule(model, TestOptimizers.Adam(model), new EsOptions { Sigma = 0.05, Pairs = 20, Seed = 5 });
        for (int i = 0; i < 100; i++) rule.Step(RuleStep.Of(i, 0.05, default));
        Assert.Equal(200, rule.Counters.ForwardPasses / 20);
        Assert.True(model.Loss(default).ToDouble() < start - 0.5 * Math.Abs(start), $"loss {start:F3} -> {model.Loss(default).ToDouble():F3}");
    }

    [Fact]
    public void Centered_ranks_span_minus_half_to_half_in_loss_order()
    {
        var r = FitnessShapingMath.CenteredRanks(new[] { 3.0, -1.0, 10.0, 2.0, 2.0 });
        Assert.Equal(new[] { 0.25, -0.5, 0.5, -0.25, 0.0 }, r);
    }
}

public class DirectEsTests
{
    [Fact]
    public void Direct_in_place_update_equals_the_estimate_fed_to_plain_sgd()
    {
        Tensor Run(bool direct)
        {
            using var model = new QuadraticModel(25);
            var options = new EsOptions { Sigma = 0.05, Pairs = 6, Seed = 4, PopulationChunkPairs = 0 };
            using var rule = new EsRule(model, direct ? null : TestOptimizers.Sgd(model), options);
            for (int i = 0; i < 10; i++) rule.Step(RuleStep.Of(i, 0.1, default));
            return model.X.detach().clone();
        }
        var viaSgd = Run(direct: false);
        var inPlace = Run(direct: true);
        Assert.True(viaSgd.allclose(inPlace, rtol: 1e-9, atol: 1e-12), $"max diff {(viaSgd - inPlace).abs().max().ToDouble():E2}");
    }
}
