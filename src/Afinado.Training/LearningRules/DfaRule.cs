using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// Direct Feedback Alignment (Nøkland 2016): the output layer gets its true gradient e·h_{L−1}ᵀ, every hidden layer
/// gets δa_i = (e·B_i) ⊙ f′(a_i) through fixed random B_i, and the optimizer steps on those. Needs an
/// <see cref="IFeedbackModel"/> that routes hidden outputs (MLP layers, conv stages, transformer blocks) through the tap.
/// </summary>
public sealed class DfaRule : ILearningRule
{
    private readonly IFeedbackModel _model;
    private readonly optim.Optimizer _optimizer;
    private readonly ParameterVector _theta;

    public DfaRule(IFeedbackModel model, optim.Optimizer optimizer, DfaFeedback feedback)
    {
        _model = model;
        _optimizer = optimizer;
        Feedback = feedback;
        _theta = new ParameterVector(model.TrainableParameters);
    }

    public string Name => "dfa";
    public DfaFeedback Feedback { get; }
    public RuleCounters Counters { get; } = new();

    public RuleStepResult Step(Batch batch)
    {
        using var scope = NewDisposeScope();
        _theta.ClearGradients();
        var loss = _model.Loss(batch, new DfaTap(Feedback));
        loss.backward();
        _optimizer.step();
        _theta.ClearGradients();
        return Counters.Record(new RuleStepResult(loss.ToDouble(), 1, 1));
    }

    public void Dispose() => Feedback.Dispose();
}
