using Afinado.Training.LearningRules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Afinado.Training.Tests.LearningRules;

/// <summary>
/// Sequence models (the Llama-style case): hidden outputs are [N, T, d] and the output error is [N, T, V]. DFA then
/// injects e·B per token at each block output. Checked against the formula dW₁ = Σ_tokens ((e·B₁) ⊙ f′(a₁))ᵀ x.
/// </summary>
public class DfaSequenceTests
{
    private sealed class TokenBlocks : Module<Tensor, Tensor>, IFeedbackModel
    {
        public readonly Linear Block1 = Linear(6, 12), Block2 = Linear(12, 12), Head = Linear(12, 5);

        public TokenBlocks() : base(nameof(TokenBlocks)) => RegisterComponents();

        public IReadOnlyList<Parameter> TrainableParameters =>
            new[] { Block1.weight!, Block1.bias!, Block2.weight!, Block2.bias!, Head.weight!, Head.bias! };

        public override Tensor forward(Tensor x) => Head.call(functional.relu(Block2.call(functional.relu(Block1.call(x)))));

        public Tensor Loss(Batch b) => functional.cross_entropy(forward(b.Inputs).reshape(-1, 5), b.Targets.reshape(-1));

        public Tensor Loss(Batch b, IFeedbackTap tap)
        {
            var h1 = tap.Hidden(functional.relu(Block1.call(b.Inputs)));
            var h2 = tap.Hidden(functional.relu(Block2.call(h1)));
            return functional.cross_entropy(tap.Output(Head.call(h2)).reshape(-1, 5), b.Targets.reshape(-1));
        }
    }

    [Fact]
    public void Error_is_injected_per_token_at_each_block_output()
    {
        using var gen = new Generator(3);
        using var model = new TokenBlocks();
        var x = randn(new long[] { 4, 7, 6 }, generator: gen);
        var y = randint(0, 5, new long[] { 4, 7 }, generator: gen);
        var batch = new Batch(x, y);
        using var feedback = new DfaFeedback(seed: 5);

        var loss = model.Loss(batch, new DfaTap(feedback));
        loss.backward();

        using var _ = no_grad();
        var logits = model.forward(x).reshape(-1, 5);
        var e = (functional.softmax(logits, 1) - functional.one_hot(y.reshape(-1), 5).to(ScalarType.Float32)) / 28.0;   // ∂L/∂y, mean over 28 tokens
        var b1 = feedback.Get(0, 5, 12, ScalarType.Float32);
        var a1 = model.Block1.call(x).reshape(-1, 12);
        var delta1 = e.matmul(b1) * (a1 > 0).to(ScalarType.Float32);
        var expected = delta1.t().matmul(x.reshape(-1, 6));
        Assert.True(model.Block1.weight!.grad!.allclose(expected, rtol: 1e-4, atol: 1e-6),
            $"max diff {(model.Block1.weight!.grad! - expected).abs().max().ToDouble():E2}");
        Assert.Equal(2, feedback.Count);
    }
}
