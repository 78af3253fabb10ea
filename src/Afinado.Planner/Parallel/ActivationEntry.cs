using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// How a saved activation is split under Megatron tensor parallelism (Korthikanti et al. 2022, §4).
/// </summary>
public enum TensorParallelSplit
{
    /// <summary>
    /// Lives in the sequence region (norm inputs, inputs of the column-parallel projections, dropout masks after the
    /// row-parallel ones, checkpointed layer inputs): whole on every TP rank, split t ways only by sequence parallelism.
    /// </summary>
    SequenceRegion,
    /// <summary>Per head or per FFN column (Q, K, V, scores, attention output, MLP intermediates, vocab-parallel logits): split t ways.</summary>
    TensorRegion,
}

/// <summary>
/// Activation bytes one GPU saves for one micro-batch with no tensor parallelism, tagged with how TP/SP split them and
/// the moments of the step at which they are live (saved tensors: forward through backward). <see cref="Kind"/> is the
/// identity of the ledger line it becomes.
/// </summary>
public sealed record ActivationEntry(LineKind Kind, string Name, long Bytes, TensorParallelSplit Split, string Formula, string Source,
    Phase Phase = Phase.ForwardAndBackward);
