using static TorchSharp.torch;

namespace Afinado.Training.Loop;

/// <summary>Plain backpropagation: accumulate gradients over the micro-batches, clip, let the optimizer step.</summary>
public sealed class BackpropRule : ILearningRule
{
    private RuleContext? ctx;

    public string Name => "backprop";

    public void Initialize(RuleContext context) => ctx = context;

    public StepOutcome Step(StepInput input)
    {
        var c = ctx ?? throw new InvalidOperationException("Initialize the rule before stepping.");
        c.Optimizer.ZeroGrad();
        double total = 0;
        for (int m = 0; m < input.MicroBatches; m++)
        {
            using var scope = NewDisposeScope();
            var (x, y) = input.MicroBatch(m);
            var loss = c.Loss(c.Model.call(x), y);
            double value = loss.item<float>();
            total += value;
            if (!double.IsFinite(value)) return new StepOutcome(value, m + 1);
            (input.MicroBatches == 1 ? loss : loss / input.MicroBatches).backward();
        }
        double? norm = null;
        if (input.ClipNorm is { } clip)
            norm = nn.utils.clip_grad_norm_(c.Trainable.Select(t => t.Parameter), clip);
        c.Optimizer.Step(input.LearningRate);
        return new StepOutcome(total / input.MicroBatches, input.MicroBatches, norm);
    }

    public Dictionary<string, Tensor> StateDict() => new();
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) { }
    public void Dispose() { }
}
