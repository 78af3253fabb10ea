using Afinado.Planner.Memory;
using Afinado.Training.LearningRules.Memory;
using Afinado.Training.Models;

namespace Afinado.Training.Tests.LearningRules;

public class RuleMemoryTests
{
    private static readonly int[] Wide = [784, 2048, 2048, 10];

    private static MlpMemoryJob Job(LearningRule rule, string optimizer = "adam", int chunk = 0) =>
        new() { Widths = Wide, Batch = 512, Rule = rule, Optimizer = optimizer, EsChunkPairs = chunk, EsPairs = 8 };

    [Fact]
    public void Parameter_count_matches_the_model_the_bench_trains()
    {
        using var mlp = new MlpClassifier(Wide);
        Assert.Equal(mlp.TrainableParameters.Sum(p => p.numel()), RuleMemory.Parameters(Wide));
    }

    [Fact]
    public void Direct_es_needs_no_grads_and_no_optimizer_state_and_peaks_far_below_backprop()
    {
        var entries = RuleMemory.Entries(Job(LearningRule.Es, "none"));
        Assert.DoesNotContain(entries, e => e.Category is Category.Gradients or Category.OptimizerState || e.Kind == LineKind.OptimizerTemporaries);
        long weights = RuleMemory.Parameters(Wide) * 4;
        long forward = 512L * (2 * (2048 + 2048) + 2 * 10) * 4, batch = 512L * 784 * 4 + 512L * 8;
        // weights + one perturbation buffer + one no-grad forward (+ minibatch and runtime slack)
        Assert.Equal(2 * weights + forward + batch + RuleMemory.RuntimeSlackBytes, RuleMemory.Peak(Job(LearningRule.Es, "none")));
        Assert.True(RuleMemory.Peak(Job(LearningRule.Es, "none")) < RuleMemory.Peak(Job(LearningRule.Backprop, "sgd")));
        Assert.True(RuleMemory.Peak(Job(LearningRule.Backprop, "sgd")) < RuleMemory.Peak(Job(LearningRule.Backprop, "adam")));
    }

    [Fact]
    public void Backprop_with_adam_peaks_in_backward_with_both_moments_resident()
    {
        long weights = RuleMemory.Parameters(Wide) * 4;
        long forward = 512L * (2 * (2048 + 2048) + 2 * 10) * 4, batch = 512L * 784 * 4 + 512L * 8;
        long backward = forward + weights + 512L * 2048 * 4;   // intermediates + grads + one activation's gradient
        long optimizerStep = weights + 2048L * 2048 * 4;        // grads + √v of the largest parameter (intermediates freed)
        Assert.True(backward > optimizerStep);
        Assert.Equal(weights + batch + RuleMemory.RuntimeSlackBytes + 2 * weights + backward, RuleMemory.Peak(Job(LearningRule.Backprop)));
    }

    [Fact]
    public void Dfa_costs_backprop_plus_feedback_matrices_plus_hidden_errors_held_through_the_optimizer_step()
    {
        // DFA's step is one dispose scope: its forward and hidden errors live through the optimizer step, where Adam's √v
        // of the largest parameter replaces backward's activation gradient; backprop frees its forward before the step.
        long extra = 10L * (2048 + 2048) * 4 + 512L * (2048 + 2048) * 4 + (2048L * 2048 * 4 - 512L * 2048 * 4);
        Assert.Equal(RuleMemory.Peak(Job(LearningRule.Backprop)) + extra, RuleMemory.Peak(Job(LearningRule.Dfa)));
    }

    [Fact]
    public void Batched_es_trades_memory_for_speed_by_the_stacked_population_rows()
    {
        long inPlace = RuleMemory.Peak(Job(LearningRule.Es, chunk: 0));
        long batched = RuleMemory.Peak(Job(LearningRule.Es, chunk: 4));
        Assert.True(batched > inPlace + 8 * RuleMemory.Parameters(Wide) * 4 - 1, "8 stacked rows must be charged");
    }
}
