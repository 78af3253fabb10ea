using Afinado.Training.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// Direct Feedback Alignment (Nøkland 2016): the output layer gets its true gradient e·h_{L−1}ᵀ, every hidden layer
/// gets δa_i = (e·B_i) ⊙ f′(a_i) through fixed random B_i, and the optimizer steps on those. Needs an
/// <see cref="IFeedbackModel"/> that routes hidden outputs (MLP layers, conv stages, transformer blocks) through the tap.
/// One feedback pass runs on the step's whole data (its micro-batches joined).
/// </summary>
public sealed class DfaRule : ILearningRule
{
    private readonly IFeedbackModel _model;
    private readonly IOptimizer _optimizer;
    private readonly ParameterVector _theta;

    public DfaRule(IFeedbackModel model, IOptimizer optimizer, DfaFeedback feedback)
    {
        _model = model;
        _optimizer = optimizer;
        Feedback = feedback;
        _theta = new ParameterVector(model.TrainableParameters);
    }

    public string Name => "dfa";
    public DfaFeedback Feedback { get; }
    public RuleCounters Counters { get; } = new();

    public RuleStepResult Step(RuleStep step)
    {
        using var scope = NewDisposeScope();
        _theta.ClearGradients();
        var loss = _model.Loss(step.Whole(), new DfaTap(Feedback));
        loss.backward();
        double? norm = Optimizers.ClipAndStep(_optimizer, step.LearningRate, step.ClipNorm);
        _theta.ClearGradients();
        return Counters.Record(new RuleStepResult(loss.ToDouble(), step.MicroBatches, step.MicroBatches, norm));
    }

    public void Dispose() => Feedback.Dispose();
}
