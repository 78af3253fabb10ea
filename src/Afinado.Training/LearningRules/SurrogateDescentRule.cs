using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// Follows a surrogate gradient directly with the optimizer (no search). The baseline Guided ES is compared against:
/// with a biased surrogate it makes fast early progress and then stalls or diverges.
/// </summary>
public sealed class SurrogateDescentRule : ILearningRule
{
    private readonly ParameterVector _theta;
    private readonly ISurrogateGradient _surrogate;
    private readonly optim.Optimizer _optimizer;
    private long _step;

    public SurrogateDescentRule(ILossModel model, ISurrogateGradient surrogate, optim.Optimizer optimizer)
    {
        _theta = new ParameterVector(model.TrainableParameters);
        _surrogate = surrogate;
        _optimizer = optimizer;
    }

    public string Name => $"descent-on-{_surrogate.Name}";
    public RuleCounters Counters { get; } = new();

    public RuleStepResult Step(Batch batch)
    {
        using var scope = NewDisposeScope();
        var s = _surrogate.Compute(batch, _step++);
        _theta.SetGradients(s.Flat);
        _optimizer.step();
        _theta.ClearGradients();
        return Counters.Record(new RuleStepResult(s.Loss ?? double.NaN, s.ForwardPasses, s.BackwardPasses));
    }

    public void Dispose() => _surrogate.Dispose();
}
