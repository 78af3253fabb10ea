using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// One model-state tensor class of the single-GPU ledger (all of it, as one unsharded replica holds it):
/// weights, gradients, master weights, optimizer moments. <see cref="Kind"/> is the identity of the ledger lines it
/// becomes (on the GPU or offloaded); <see cref="Class"/> says which ZeRO class shards it;
/// <see cref="Shardable"/> is false for state that is not a parameter tensor and so stays whole on every rank
/// (bitsandbytes' quantization constants). <see cref="Phase"/> narrows when it is live (optimizer temporaries: the step).
/// <see cref="FrozenFloatWeights"/> marks the frozen non-quantized base, which FSDP keeps in the dtype it was loaded in
/// (<see cref="ParallelLayout.FsdpShardedDtype"/>). <see cref="ExpertElements"/> is the part of <see cref="Elements"/> in
/// routed-expert tensors, which expert parallelism splits over its group.
/// </summary>
public sealed record ModelStateEntry(LineKind Kind, string Name, StateKind Class, long Elements, double BytesPerElement, string Source,
    bool Shardable = true, Phase Phase = Phase.Step, bool FrozenFloatWeights = false, long ExpertElements = 0)
{
    public long Bytes => (long)Math.Ceiling(Elements * BytesPerElement);

    /// <summary>
    /// Mixed-precision Adam model states as the ZeRO paper counts them: 2Ψ fp16 weights, 2Ψ fp16 gradients and KΨ of
    /// optimizer state (fp32 master copy 4 + moments 8 for Adam: K = 12). <paramref name="trainable"/> ≤ <paramref name="parameters"/>.
    /// </summary>
    public static IReadOnlyList<ModelStateEntry> MixedPrecisionAdam(long parameters, long trainable, double k = 12)
    {
        const string paper = "ZeRO (Rajbhandari et al. 2019) §3.1: 2Ψ + 2Ψ + KΨ";
        return
        [
            new(LineKind.Weights, "16-bit weights", StateKind.Parameters, parameters, 2, paper),
            new(LineKind.Gradients, "16-bit gradients", StateKind.Gradients, trainable, 2, paper),
            new(LineKind.OptimizerState, $"optimizer states (fp32 master + moments, K={k:0.##})", StateKind.OptimizerStates, trainable, k, paper),
        ];
    }
}
