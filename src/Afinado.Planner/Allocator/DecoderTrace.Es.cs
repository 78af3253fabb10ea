using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>Evolution-strategies steps (<c>--rule es</c> / <c>es-direct</c>) as allocator events.</summary>
internal sealed partial class DecoderTrace
{
    /// <summary>
    /// An ES step as <c>bench/gpu/measure_rules.py</c> runs it on transformers (MeZO, Malladi et al. 2023: one ε buffer,
    /// regenerated from its seed rather than kept per pair). The buffer over every trainable parameter is allocated once
    /// after the model; each antithetic pair applies θ + ε and θ − ε in place and runs a no-grad forward with the loss
    /// over every position (<c>labels</c>, <c>use_cache=False</c>, eval mode: no dropout). es-direct then moves θ in place
    /// and allocates nothing more; es sums Σ cᵢ·εᵢ into a fresh buffer, clones each parameter's slice into <c>.grad</c>,
    /// deletes the sum and steps the optimizer (its state created at the first step), then <c>zero_grad(set_to_none=True)</c>.
    /// One pair is traced: every forward of a step allocates the same tensors, so a second pair adds nothing the first did
    /// not hold.
    /// </summary>
    public void EsStep()
    {
        Build();
        var trainable = _params.Where(p => p.Trainable).ToList();
        long trainableBytes = trainable.Sum(p => p.Nbytes);
        int epsilon = _t.New(trainableBytes);
        int ids = _t.New(8 * T);
        _t.Trace.StartIteration(0);
        _t.Recording = false;
        for (int it = 1; it <= 2; it++)
        {
            _t.Trace.StartIteration(it);
            for (int sign = 0; sign < 2; sign++)
            {
                int loss = ForwardWithLoss(ids, out int heldOutput);
                _t.Drop(loss);
                if (heldOutput >= 0) _t.Drop(heldOutput);
            }
            if (_job.Rule != LearningRule.Es) continue;
            int sum = _t.New(trainableBytes);
            foreach (var p in trainable) p.Grad = _t.New(p.Nbytes);
            _t.Drop(sum);
            OptimizerStep();
            foreach (var p in trainable) ZeroGrad(p);
        }
        _t.Drop(ids, epsilon);
    }
}
