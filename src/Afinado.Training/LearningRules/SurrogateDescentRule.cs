using Afinado.Training.Optim;
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
    private readonly IOptimizer _optimizer;

    public SurrogateDescentRule(ILossModel model, ISurrogateGradient surrogate, IOptimizer optimizer)
    {
        _theta = new ParameterVector(model.TrainableParameters);
        _surrogate = surrogate;
        _optimizer = optimizer;
    }

    public string Name => $"descent-on-{_surrogate.Name}";
    public RuleCounters Counters { get; } = new();

    public RuleStepResult Step(RuleStep step)
    {
        using var scope = NewDisposeScope();
        var s = _surrogate.Compute(step.Whole(), step.Index);
        _theta.SetGradients(s.Flat);
        double? norm = Optimizers.ClipAndStep(_optimizer, step.LearningRate, step.ClipNorm);
        _theta.ClearGradients();
        return Counters.Record(new RuleStepResult(s.Loss ?? double.NaN, s.ForwardPasses * step.MicroBatches, s.BackwardPasses * step.MicroBatches, norm));
    }

    public void Dispose() => _surrogate.Dispose();
}
