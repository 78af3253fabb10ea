using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// Views a list of parameters as one flat vector of length <see cref="Count"/> without moving them: reads gather,
/// writes scatter slice by slice. Rules use it to perturb weights in place and to hand flat estimates to an optimizer.
/// </summary>
public sealed class ParameterVector
{
    private readonly IReadOnlyList<Parameter> _parameters;
    private readonly long[] _offsets;

    public ParameterVector(IReadOnlyList<Parameter> parameters)
    {
        if (parameters.Count == 0) throw new ArgumentException("A learning rule needs at least one trainable parameter.", nameof(parameters));
        _parameters = parameters;
        _offsets = new long[parameters.Count];
        long off = 0;
        for (int i = 0; i < parameters.Count; i++) { _offsets[i] = off; off += parameters[i].numel(); }
        Count = off;
        DType = parameters[0].dtype;
        if (parameters.Any(p => p.dtype != DType)) throw new ArgumentException("All trainable parameters must share one dtype.", nameof(parameters));
    }

    public long Count { get; }
    public ScalarType DType { get; }
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>A detached copy of the current values, [Count].</summary>
    public Tensor Gather()
    {
        using var _ = no_grad();
        return cat(_parameters.Select(p => p.detach().reshape(-1)).ToList(), 0);
    }

    /// <summary>θ += alpha·v, slice by slice, in place (no copy of θ is made).</summary>
    public void AddInPlace(Tensor v, double alpha)
    {
        using var _ = no_grad();
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            using var slice = v.narrow(0, _offsets[i], p.numel()).view(p.shape);
            p.add_(slice, alpha);
        }
    }

    /// <summary>θ ← v.</summary>
    public void CopyFrom(Tensor v)
    {
        using var _ = no_grad();
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            using var slice = v.narrow(0, _offsets[i], p.numel()).view(p.shape);
            p.copy_(slice);
        }
    }

    /// <summary>Sets every parameter's .grad to its slice of <paramref name="g"/> (copied), so any optimizer can step on it.</summary>
    public void SetGradients(Tensor g)
    {
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i];
            // The .grad field keeps its own reference; our wrapper must be disposed now, or the copy stays alive until
            // the GC finalizes it (a full gradient's worth of memory per step).
            using var slice = g.narrow(0, _offsets[i], p.numel()).view(p.shape).detach().clone();
            using var old = p.grad;
            p.grad = slice;
        }
    }

    /// <summary>The current .grad of every parameter as one flat vector (zeros where a parameter has none).</summary>
    public Tensor GatherGradients()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var flat = cat(_parameters.Select(p => p.grad is { } g ? g.detach().reshape(-1) : zeros(p.numel(), dtype: p.dtype)).ToList(), 0);
        return flat.MoveToOuterDisposeScope();
    }

    /// <summary>Drops all .grad tensors (frees their memory, unlike zeroing).</summary>
    public void ClearGradients()
    {
        foreach (var p in _parameters)
        {
            using var g = p.grad;
            if (g is null) continue;
            p.grad = null;
        }
    }
}
