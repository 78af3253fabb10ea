namespace Afinado.Planner.Memory;

/// <summary>
/// Moments at which memory is summed; the peak is the largest sum. One set of moments for every ledger: the single-GPU
/// ledger resolves a step finely (the last layer's forward, the head's backward, perturbed forwards), the per-GPU ledger
/// of a parallel layout only at <see cref="Phases.StepMoments"/>, and a node's CPU RAM adds <see cref="ModelLoad"/>.
/// </summary>
[Flags]
public enum Phase
{
    None = 0,
    /// <summary>End of the forward pass: saved activations and the loss are live.</summary>
    Forward = 1,
    /// <summary>Start of backward: activations still live, loss gradients and the first weight gradients allocated.</summary>
    BackwardStart = 2,
    /// <summary>End of backward: all gradients, the last layer's activations and backward temporaries.</summary>
    BackwardEnd = 4,
    /// <summary>optimizer.step(): gradients, states (created on the first step) and the optimizer's temporaries.</summary>
    OptimizerStep = 8,
    /// <summary>Inference prefill of the prompt.</summary>
    Prefill = 16,
    /// <summary>Inference decode with the full KV cache.</summary>
    Decode = 32,
    /// <summary>Inside the last layer's forward: all earlier saved tensors plus that layer's forward temporaries (eager scores).</summary>
    ForwardLastLayer = 64,
    /// <summary>The head's backward, right after the loss's: the cross-entropy's saved log-softmax and its gradient are
    /// freed, the logits' gradient feeds the head's matmul, which allocates the head's weight gradient.</summary>
    BackwardHead = 128,
    /// <summary>ES / Guided ES: inside the last layer of a perturbed forward without autograd (f(θ±ε)).</summary>
    PerturbedLayer = 256,
    /// <summary>ES / Guided ES: the perturbed forward's logits and cross-entropy.</summary>
    PerturbedLoss = 512,
    /// <summary>Loading the checkpoint before training (a node's CPU RAM only; transient).</summary>
    ModelLoad = 1024,
    /// <summary>Image inputs: the vision tower's last block, before the decoder runs (the step's persistent memory, the
    /// tower's saved tensors and one block's temporaries; no decoder activation yet). Only image plans carry it.</summary>
    VisionTower = 2048,
    Training = Forward | ForwardLastLayer | BackwardStart | BackwardHead | BackwardEnd | OptimizerStep,
    /// <summary>The moments of a perturbed (forward-only) evaluation.</summary>
    Perturbed = PerturbedLayer | PerturbedLoss,
    Inference = Prefill | Decode,
    /// <summary>Forward and backward as the per-GPU ledger of a parallel layout resolves them (activations, gathered units, buckets).</summary>
    ForwardAndBackward = Forward | BackwardStart | BackwardEnd,
    /// <summary>The whole step as the per-GPU ledger of a parallel layout resolves it (model states, runtime overheads).</summary>
    Step = ForwardAndBackward | OptimizerStep,
}

public static class Phases
{
    /// <summary>The single-GPU ledger's moments, in the order ties are broken (the earliest wins).</summary>
    public static readonly Phase[] Moments = [Phase.ForwardLastLayer, Phase.Forward, Phase.BackwardStart, Phase.BackwardHead, Phase.BackwardEnd, Phase.OptimizerStep, Phase.Prefill, Phase.Decode,
        Phase.PerturbedLayer, Phase.PerturbedLoss, Phase.VisionTower];

    /// <summary>The moments the per-GPU ledger of a parallel layout sums at.</summary>
    public static readonly Phase[] StepMoments = [Phase.Forward, Phase.BackwardStart, Phase.BackwardEnd, Phase.OptimizerStep];

    /// <summary>The per-GPU moments of a parallel layout with image inputs: the step's and the vision tower's.</summary>
    public static readonly Phase[] StepMomentsWithVisionTower = [.. StepMoments, Phase.VisionTower];

    /// <summary>The moments a node's CPU RAM is summed at: loading the checkpoint, then the step.</summary>
    public static readonly Phase[] NodeMoments = [Phase.ModelLoad, .. StepMoments];

    /// <summary>The single-GPU ledger's wording (plan table and plan JSON).</summary>
    public static string Name(this Phase p) => p switch
    {
        Phase.Forward => "forward",
        Phase.ForwardLastLayer => "forward (last layer)",
        Phase.BackwardStart => "backward (start)",
        Phase.BackwardHead => "backward (head)",
        Phase.BackwardEnd => "backward (end)",
        Phase.OptimizerStep => "optimizer step",
        Phase.Prefill => "prefill",
        Phase.Decode => "decode",
        Phase.PerturbedLayer => "perturbed forward (last layer)",
        Phase.PerturbedLoss => "perturbed forward (loss)",
        Phase.ModelLoad => "model load",
        Phase.VisionTower => "vision tower",
        Phase.None => "not on the device",
        _ => string.Join(", ", Moments.Where(m => (p & m) != 0).Select(Name)),
    };

    /// <summary>The parallel ledger's wording (its table and the <c>parallel</c> part of the plan JSON): the whole step reads
    /// "always", forward through backward "forward and backward", other sets join their moments with " + ". The vision
    /// tower runs inside the forward, so a line held through the whole forward is named without it.</summary>
    public static string StepName(this Phase p) => p switch
    {
        _ when (p & Phase.ForwardAndBackward) == Phase.ForwardAndBackward && (p & Phase.VisionTower) != 0 => StepName(p & ~Phase.VisionTower),
        Phase.Step => "always",
        Phase.ForwardAndBackward => "forward and backward",
        Phase.Forward or Phase.BackwardStart or Phase.BackwardEnd or Phase.OptimizerStep or Phase.ModelLoad or Phase.VisionTower => p.Name(),
        _ => string.Join(" + ", StepMomentsWithVisionTower.Where(m => (p & m) != 0).Select(Name)),
    };
}
