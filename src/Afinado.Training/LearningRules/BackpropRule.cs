using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>Plain backpropagation: loss.backward() and one optimizer step.</summary>
public sealed class BackpropRule : ILearningRule
{
    private readonly ILossModel _model;
    private readonly optim.Optimizer _optimizer;
    private readonly ParameterVector _theta;

    public BackpropRule(ILossModel model, optim.Optimizer optimizer)
    {
        _model = model;
        _optimizer = optimizer;
        _theta = new ParameterVector(model.TrainableParameters);
    }

    public string Name => "backprop";
    public RuleCounters Counters { get; } = new();

    public RuleStepResult Step(Batch batch)
    {
        using var scope = NewDisposeScope();
        _theta.ClearGradients();
        var loss = _model.Loss(batch);
        loss.backward();
        _optimizer.step();
        _theta.ClearGradients();
        return Counters.Record(new RuleStepResult(loss.ToDouble(), 1, 1));
    }

    public void Dispose() { }
}
