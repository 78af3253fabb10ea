namespace Afinado.Planner.Parallel;

/// <summary>When during a training step a line is live. The per-GPU peak is the larger of the two phase sums.</summary>
public enum StepPhase
{
    /// <summary>Live for the whole step (model states at rest, runtime overheads).</summary>
    Always,
    /// <summary>Forward/backward: activations, gathered layers, gradient buckets.</summary>
    Backward,
    /// <summary>Optimizer step: fp32 gradient partitions, parameter all-gather after the update.</summary>
    OptimizerStep,
    /// <summary>Loading the checkpoint before training (CPU RAM only; transient).</summary>
    ModelLoad,
}

/// <summary>
/// One named entry of a memory ledger, per GPU or per node: bytes, the formula that produced them (with the numbers
/// substituted, so a reader can redo the arithmetic) and the source of the formula.
/// </summary>
public sealed record MemoryLine(string Name, long Bytes, string Formula, string Source, StepPhase Phase = StepPhase.Always);
