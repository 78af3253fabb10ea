namespace Afinado.Planner.Memory;

/// <summary>Moments at which memory is summed; the peak is the largest sum.</summary>
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
    Training = Forward | ForwardLastLayer | BackwardStart | BackwardHead | BackwardEnd | OptimizerStep,
    /// <summary>The moments of a perturbed (forward-only) evaluation.</summary>
    Perturbed = PerturbedLayer | PerturbedLoss,
    Inference = Prefill | Decode,
}

public static class Phases
{
    public static readonly Phase[] Moments = [Phase.ForwardLastLayer, Phase.Forward, Phase.BackwardStart, Phase.BackwardHead, Phase.BackwardEnd, Phase.OptimizerStep, Phase.Prefill, Phase.Decode,
        Phase.PerturbedLayer, Phase.PerturbedLoss];

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
        Phase.None => "not on the device",
        _ => string.Join(", ", Moments.Where(m => (p & m) != 0).Select(Name)),
    };
}

/// <summary>What a ledger line is, for grouping and for the fixes that act on it.</summary>
public enum Category { Weights, Gradients, OptimizerState, Activations, Logits, Temporary, KvCache, Runtime, Paged,
    /// <summary>Held in host (CPU) memory, not on the device: offloaded activations.</summary>
    Host }

/// <summary>
/// One tensor class in the ledger: how many bytes, when it is live, the formula behind it and where the formula
/// (or constant) comes from — a section of memory.md, a framework's source, or a measurement.
/// </summary>
public sealed record LedgerEntry(string Name, Category Category, Phase Phases, double Bytes, string Formula, string Source)
{
    public long RoundedBytes => checked((long)Math.Ceiling(Bytes));
}
