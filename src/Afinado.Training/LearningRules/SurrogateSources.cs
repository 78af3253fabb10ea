using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// The backprop gradient, refreshed every <c>refreshEvery</c> steps and reused (stale) in between. With refreshEvery = 1
/// it is the exact minibatch gradient: Guided ES must then track SGD, a sanity check.
/// </summary>
public sealed class StaleBackpropSurrogate : ISurrogateGradient
{
    private readonly ILossModel _model;
    private readonly ParameterVector _theta;
    private readonly int _refreshEvery;
    private Tensor? _cached;

    public StaleBackpropSurrogate(ILossModel model, int refreshEvery = 1)
    {
        if (refreshEvery < 1) throw new ArgumentOutOfRangeException(nameof(refreshEvery), "must be ≥ 1");
        _model = model;
        _theta = new ParameterVector(model.TrainableParameters);
        _refreshEvery = refreshEvery;
    }

    public string Name => _refreshEvery == 1 ? "backprop" : $"stale-backprop-{_refreshEvery}";

    public SurrogateGradient Compute(Batch batch, long step)
    {
        if (_cached is not null && step % _refreshEvery != 0) return new(_cached.clone(), null, 0, 0);
        _cached?.Dispose();
        var (g, loss) = SurrogateMath.BackpropGradient(_theta, () => _model.Loss(batch));
        _cached = g.clone().DetachFromDisposeScope();
        return new(g, loss, 1, 1);
    }

    public void Dispose() => _cached?.Dispose();
}

/// <summary>The DFA pseudo-gradient: what DFA would apply, used as the guiding direction (one forward, one cheap backward).</summary>
public sealed class DfaSurrogate : ISurrogateGradient
{
    private readonly IFeedbackModel _model;
    private readonly DfaFeedback _feedback;
    private readonly ParameterVector _theta;

    public DfaSurrogate(IFeedbackModel model, DfaFeedback feedback)
    {
        _model = model;
        _feedback = feedback;
        _theta = new ParameterVector(model.TrainableParameters);
    }

    public string Name => "dfa";

    public SurrogateGradient Compute(Batch batch, long step)
    {
        var (g, loss) = SurrogateMath.BackpropGradient(_theta, () => _model.Loss(batch, new DfaTap(_feedback)));
        return new(g, loss, 1, 1);
    }

    public void Dispose() { }
}

/// <summary>
/// The gradient of a cheaper stand-in model (lower precision, fewer layers, a smaller batch …) whose trainable
/// parameters have the same flat layout as the real one. <c>sync</c> copies the real weights into it first.
/// </summary>
public sealed class CheaperModelSurrogate : ISurrogateGradient
{
    private readonly ILossModel _cheap;
    private readonly ParameterVector _cheapTheta;
    private readonly Action _sync;
    private readonly Func<Batch, Batch> _shrinkBatch;
    private readonly ScalarType _targetType;

    public CheaperModelSurrogate(ILossModel cheap, ScalarType targetType, Action sync, Func<Batch, Batch>? shrinkBatch = null)
    {
        _cheap = cheap;
        _cheapTheta = new ParameterVector(cheap.TrainableParameters);
        _targetType = targetType;
        _sync = sync;
        _shrinkBatch = shrinkBatch ?? (b => b);
    }

    public string Name => "cheaper-model";

    public SurrogateGradient Compute(Batch batch, long step)
    {
        _sync();
        var small = _shrinkBatch(batch);
        var (g, loss) = SurrogateMath.BackpropGradient(_cheapTheta, () => _cheap.Loss(small));
        return new(g.to(_targetType), loss, 1, 1);
    }

    public void Dispose() { }
}

/// <summary>
/// Any surrogate plus a fixed bias of the same norm: g̃ = g + b̂·‖g‖ with b̂ a unit vector. This is the biased gradient
/// of the Guided ES paper's toy problem (Maheswaranathan et al. 2019, Fig. 1).
/// </summary>
public sealed class BiasedSurrogate : ISurrogateGradient
{
    private readonly ISurrogateGradient _inner;
    private readonly Tensor _unitBias;

    public BiasedSurrogate(ISurrogateGradient inner, Tensor unitBias)
    {
        _inner = inner;
        _unitBias = unitBias;
    }

    public string Name => $"biased-{_inner.Name}";

    public SurrogateGradient Compute(Batch batch, long step)
    {
        var s = _inner.Compute(batch, step);
        using var _ = no_grad();
        var biased = s.Flat + _unitBias * s.Flat.norm();
        s.Flat.Dispose();
        return s with { Flat = biased };
    }

    public void Dispose() => _inner.Dispose();
}

internal static class SurrogateMath
{
    /// <summary>Runs loss.backward() once and returns the flat gradient of <paramref name="theta"/> and the loss; .grad is cleared.</summary>
    public static (Tensor Gradient, double Loss) BackpropGradient(ParameterVector theta, Func<Tensor> loss)
    {
        theta.ClearGradients();
        using var scope = NewDisposeScope();
        var l = loss();
        l.backward();
        var g = theta.GatherGradients().MoveToOuterDisposeScope();
        double value = l.ToDouble();
        theta.ClearGradients();
        return (g, value);
    }
}
