using Afinado.Training.LearningRules;
using Afinado.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.Tests.LearningRules;

public class LowRankEsTests
{
    /// <summary>One ES step with SGD lr 1 moves θ by exactly −g; returns g flattened over all trainable parameters.</summary>
    private static Tensor Estimate(ILossModel model, EsOptions options, Batch batch)
    {
        var before = model.TrainableParameters.Select(p => p.detach().clone()).ToList();
        using (var rule = new EsRule(model, TestOptimizers.Sgd(model), options)) rule.Step(RuleStep.Of(0, 1.0, batch));
        var g = cat(model.TrainableParameters.Zip(before, (p, b) => (b - p.detach()).reshape(-1)).ToList(), 0);
        using (no_grad()) foreach (var (p, b) in model.TrainableParameters.Zip(before)) p.copy_(b);
        return g;
    }

    [Fact]
    public void Dense_writer_and_stacked_factors_draw_the_same_perturbation()
    {
        using var mlp = new MlpClassifier([6, 5, 3]);
        var noise = new LowRankNoise(mlp.TrainableParameters, rank: 2);
        long count = mlp.TrainableParameters.Sum(p => p.numel());
        using var dense = empty(count);
        using (var gen = new Generator(42)) noise.WriteDense(gen, 0.3, dense);
        using var gen2 = new Generator(42);
        var stacked = noise.Stack([gen2], 0.3, ScalarType.Float32);
        var rebuilt = cat(new[]
        {
            stacked[0].A![0].matmul(stacked[0].B![0].t()).reshape(-1), stacked[1].Z![0],
            stacked[2].A![0].matmul(stacked[2].B![0].t()).reshape(-1), stacked[3].Z![0],
        }, 0);
        Assert.True(dense.allclose(rebuilt, rtol: 1e-5, atol: 1e-6), $"max diff {(dense - rebuilt).abs().max().ToDouble():E2}");
        // A matrix's perturbation has rank r (2), not full rank.
        Assert.Equal(2, linalg.matrix_rank(dense.narrow(0, 0, 30).view(5, 6)).ToInt64());
    }

    [Fact]
    public void Low_rank_population_call_equals_member_by_member_evaluation()
    {
        using var mlp = new MlpClassifier([12, 7, 3]);
        using var gen = new Generator(3);
        var batch = new Batch(randn(new long[] { 20, 12 }, generator: gen), randint(0, 3, new long[] { 20 }, generator: gen));
        var options = new EsOptions { Sigma = 0.05, Pairs = 9, Seed = 5, NoiseRank = 2, Shaping = FitnessShaping.None };
        var batched = Estimate(mlp, options with { PopulationChunkPairs = 4 }, batch);
        var inPlace = Estimate(mlp, options with { PopulationChunkPairs = 0 }, batch);
        Assert.True(batched.allclose(inPlace, rtol: 1e-3, atol: 1e-4), $"max diff {(batched - inPlace).abs().max().ToDouble():E2}");
        Assert.True(batched.abs().max().ToDouble() > 1e-3, "the estimate must not be zero");
    }

    [Fact]
    public void Low_rank_estimate_on_a_quadratic_converges_to_the_true_gradient_as_the_population_grows()
    {
        using var model = new QuadraticModel(new long[] { 6, 8 });
        var truth = model.TrueGradient().reshape(-1);
        var errors = new[] { 10, 100, 1000, 10_000 }
            .Select(p => Estimate(model, new EsOptions { Sigma = 0.05, Pairs = p, NoiseRank = 1, Shaping = FitnessShaping.None, PopulationChunkPairs = 256, Seed = 3 }, default))
            .Select(g => ((g - truth).norm() / truth.norm()).ToDouble())
            .ToArray();
        // E[vec ε vec εᵀ] = σ²I for ε = σ·a·bᵀ, so the estimate is unbiased; its Monte-Carlo error shrinks like 1/√P.
        string all = string.Join(", ", errors.Select(e => e.ToString("F3")));
        Assert.True(errors[3] < 0.15, $"error at P=10000 is {errors[3]:F3} ({all})");
        Assert.True(errors[0] > 5 * errors[3], $"errors {all} do not shrink");
    }

    [Fact]
    public void Low_rank_es_with_adam_trains_a_small_classifier()
    {
        using var mlp = new MlpClassifier([10, 16, 3]);
        using var gen = new Generator(9);
        var x = randn(new long[] { 64, 10 }, generator: gen);
        var batch = new Batch(x, x.narrow(1, 0, 3).argmax(1));
        double start = mlp.Loss(batch).ToDouble();
        using var rule = new EsRule(mlp, TestOptimizers.Adam(mlp), new EsOptions { Sigma = 0.05, Pairs = 64, NoiseRank = 1, PopulationChunkPairs = 32, Seed = 1 });
        for (int i = 0; i < 60; i++) rule.Step(RuleStep.Of(i, 0.02, batch));
        double end = mlp.Loss(batch).ToDouble();
        Assert.True(end < 0.6 * start, $"loss {start:F3} -> {end:F3}");
    }

    [Fact]
    public void Negative_noise_rank_is_rejected()
    {
        using var model = new QuadraticModel(4);
        Assert.Throws<ArgumentOutOfRangeException>(() => new EsRule(model, null, new EsOptions { NoiseRank = -1 }));
    }
}
