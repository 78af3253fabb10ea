using Afinado.Training.Optim;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// Plain backpropagation: gradients accumulated over the step's micro-batches (each loss scaled by 1/micro-batches, so the
/// step's gradient is the mean over them), the optional clip, one optimizer step, and the gradients dropped again (the
/// optimizer's parameters are the model's trainable ones). Memory: one micro-batch's activations at a time, plus a gradient per trainable parameter from the first backward to
/// the end of the step.
/// </summary>
public sealed class BackpropRule(ILossModel model, IOptimizer optimizer) : ILearningRule
{
    public string Name => "backprop";
    public RuleCounters Counters { get; } = new();

    public RuleStepResult Step(RuleStep step)
    {
        optimizer.ZeroGrad();
        double total = 0;
        for (int m = 0; m < step.MicroBatches; m++)
        {
            using var scope = NewDisposeScope();
            var loss = model.Loss(step.MicroBatch(m));
            double value = loss.item<float>();
            total += value;
            // A non-finite loss stops the step before any update: the host keeps the last good state.
            if (!double.IsFinite(value)) return Counters.Record(new RuleStepResult(value, m + 1, m));
            (step.MicroBatches == 1 ? loss : loss / step.MicroBatches).backward();
        }
        Counters.RecordGradients(Optimizers.GradientBytes(optimizer));
        double? norm = Optimizers.ClipAndStep(optimizer, step.LearningRate, step.ClipNorm);
        optimizer.ZeroGrad();
        return Counters.Record(new RuleStepResult(total / step.MicroBatches, step.MicroBatches, step.MicroBatches, norm));
    }

    public void Dispose() { }
}
