using Afinado.Training.LearningRules;
using Afinado.Training.LearningRules.Models;
using Afinado.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.Tests.LearningRules;

public class DfaRuleTests
{
    /// <summary>A model with weights from its own generator, so tests running in parallel cannot disturb them.</summary>
    private static MlpClassifier Mlp(params int[] widths)
    {
        var model = new MlpClassifier(widths);
        using var gen = new Generator(42);
        using var _ = no_grad();
        foreach (var p in model.TrainableParameters) p.uniform_(-0.3, 0.3, gen);
        return model;
    }

    private static Batch ToyBatch(int n = 32, int inputs = 8, int classes = 3)
    {
        using var gen = new Generator(5);
        return new Batch(randn(new long[] { n, inputs }, generator: gen), randint(0, classes, new long[] { n }, generator: gen));
    }

    [Fact]
    public void Dfa_with_feedback_equal_to_the_output_weights_gives_exactly_the_backprop_update()
    {
        var batch = ToyBatch();
        using var bp = Mlp(8, 16, 3);
        using var dfa = Mlp(8, 16, 3);
        using var feedback = new DfaFeedback(seed: 1);
        feedback.Set(0, dfa.Layers[1].weight!);          // B_1 = W_2ᵀ in column notation: e·W_2 as rows

        using var bpRule = new BackpropRule(bp, TestOptimizers.Sgd(bp));
        using var dfaRule = new DfaRule(dfa, TestOptimizers.Sgd(dfa), feedback);
        double bpLoss = bpRule.Step(RuleStep.Of(0, 0.5, batch)).Loss;
        double dfaLoss = dfaRule.Step(RuleStep.Of(0, 0.5, batch)).Loss;

        Assert.Equal(bpLoss, dfaLoss, 6);
        foreach (var (p, q) in bp.TrainableParameters.Zip(dfa.TrainableParameters))
            Assert.True(p.allclose(q, rtol: 1e-5, atol: 1e-7), $"max diff {(p - q).abs().max().ToDouble():E2}");
    }

    [Fact]
    public void Random_feedback_changes_hidden_updates_but_not_the_output_layer_update()
    {
        var batch = ToyBatch();
        using var bp = Mlp(8, 16, 3);
        using var dfa = Mlp(8, 16, 3);
        var w2Before = bp.Layers[1].weight!.detach().clone();
        using var bpRule = new BackpropRule(bp, TestOptimizers.Sgd(bp));
        using var dfaRule = new DfaRule(dfa, TestOptimizers.Sgd(dfa), new DfaFeedback(seed: 3));
        bpRule.Step(RuleStep.Of(0, 0.5, batch));
        dfaRule.Step(RuleStep.Of(0, 0.5, batch));

        Assert.True(bp.Layers[1].weight!.allclose(dfa.Layers[1].weight!, rtol: 1e-5, atol: 1e-7), "output layer always gets the true gradient");
        Assert.False(bp.Layers[0].weight!.allclose(dfa.Layers[0].weight!, rtol: 1e-3, atol: 1e-5), "hidden layer must follow e·B, not backprop");
        Assert.False(dfa.Layers[1].weight!.allclose(w2Before), "the step must move the weights");
        Assert.Equal(1, dfaRule.Feedback.Count);
    }

    [Fact]
    public void Dfa_trains_a_two_hidden_layer_mlp_and_a_lenet()
    {
        var batch = ToyBatch(64, 8, 3);
        using var mlp = Mlp(8, 32, 32, 3);
        using var rule = new DfaRule(mlp, TestOptimizers.Adam(mlp), new DfaFeedback(seed: 2));
        double first = rule.Step(RuleStep.Of(0, 0.01, batch)).Loss, last = first;
        for (int i = 1; i <= 150; i++) last = rule.Step(RuleStep.Of(i, 0.01, batch)).Loss;
        Assert.True(last < 0.5 * first, $"DFA MLP loss {first:F3} -> {last:F3}");
        Assert.Equal(2, rule.Feedback.Count);

        using var lenet = new RuleLeNet();
        using var gen = new Generator(9);
        var images = new Batch(rand(new long[] { 16, 1, 28, 28 }, generator: gen), randint(0, 10, new long[] { 16 }, generator: gen));
        var before = lenet.TrainableParameters.Select(p => p.detach().clone()).ToList();
        using var lenetRule = new DfaRule(lenet, TestOptimizers.Sgd(lenet), new DfaFeedback(seed: 2));
        lenetRule.Step(RuleStep.Of(0, 0.1, images));
        // Every conv and FC parameter gets a DFA update (conv stages receive e·B_i through the pooled feature maps).
        foreach (var (p, b) in lenet.TrainableParameters.Zip(before))
            Assert.False(p.allclose(b), "a LeNet parameter did not move");
        Assert.Equal(4, lenetRule.Feedback.Count);
    }
}
