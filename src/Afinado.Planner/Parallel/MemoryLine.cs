namespace Afinado.Planner.Parallel;

/// <summary>
/// Moments of a training step at which memory is summed (the same moments as the single-GPU ledger); a line is live at
/// every moment in its set, and the per-GPU peak is the largest sum over the moments.
/// </summary>
[Flags]
public enum StepPhase
{
    None = 0,
    /// <summary>End of forward: saved activations, gathered layers.</summary>
    Forward = 1,
    /// <summary>Start of backward: activations and the loss gradients.</summary>
    BackwardStart = 2,
    /// <summary>End of backward: gradients, recomputed layer, gradient buckets.</summary>
    BackwardEnd = 4,
    /// <summary>Optimizer step: fp32 gradient partitions, the parameter all-gather after the update.</summary>
    OptimizerStep = 8,
    /// <summary>Loading the checkpoint before training (CPU RAM only; transient).</summary>
    ModelLoad = 16,
    /// <summary>Forward and backward (activations, gathered units, buckets).</summary>
    Backward = Forward | BackwardStart | BackwardEnd,
    /// <summary>The whole step (model states, runtime overheads).</summary>
    Always = Backward | OptimizerStep,
}

public static class StepPhases
{
    public static readonly StepPhase[] Moments = [StepPhase.Forward, StepPhase.BackwardStart, StepPhase.BackwardEnd, StepPhase.OptimizerStep];

    public static string Name(this StepPhase p) => p switch
    {
        StepPhase.Forward => "forward",
        StepPhase.BackwardStart => "backward (start)",
        StepPhase.BackwardEnd => "backward (end)",
        StepPhase.OptimizerStep => "optimizer step",
        StepPhase.ModelLoad => "model load",
        StepPhase.Always => "always",
        StepPhase.Backward => "forward and backward",
        _ => string.Join(" + ", Moments.Where(m => (p & m) != 0).Select(Name)),
    };
}

/// <summary>
/// One named entry of a memory ledger, per GPU or per node: bytes, the formula that produced them (with the numbers
/// substituted, so a reader can redo the arithmetic) and the source of the formula.
/// </summary>
public sealed record MemoryLine(string Name, long Bytes, string Formula, string Source, StepPhase Phase = StepPhase.Always);
