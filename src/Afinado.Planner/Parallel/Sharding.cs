namespace Afinado.Planner.Parallel;

/// <summary>
/// How model states are split over the data-parallel ranks. DeepSpeed ZeRO stages and their PyTorch FSDP twins
/// (ecosystem.md §6.4): DDP ≈ ZeRO-0 ≈ NO_SHARD, ZeRO-2 ≈ SHARD_GRAD_OP, ZeRO-3 ≈ FULL_SHARD; HYBRID_SHARD is
/// FULL_SHARD inside a node and replication across nodes. ZeRO-1 has no FSDP twin.
/// </summary>
public enum Sharding
{
    /// <summary>Plain data parallel (DDP / ZeRO stage 0): every rank holds every model state.</summary>
    None,
    /// <summary>ZeRO-1 (P_os): optimizer states (incl. the fp32 master copy) sharded.</summary>
    Zero1,
    /// <summary>ZeRO-2 (P_os+g): optimizer states and gradients sharded.</summary>
    Zero2,
    /// <summary>ZeRO-3 (P_os+g+p): parameters too; layers are gathered just in time.</summary>
    Zero3,
    /// <summary>FSDP FULL_SHARD (FSDP2 reshard_after_forward=true).</summary>
    FsdpFull,
    /// <summary>FSDP SHARD_GRAD_OP (FSDP2 reshard_after_forward=false): parameters stay gathered between forward and backward.</summary>
    FsdpGradOp,
    /// <summary>FSDP HYBRID_SHARD: full shard within a node, replicate across nodes.</summary>
    FsdpHybrid,
}

/// <summary>What is moved to CPU RAM.</summary>
public enum Offload
{
    None,
    /// <summary>ZeRO-Offload: fp32 master weights, optimizer moments and fp32 gradients live on the CPU; the step runs there.</summary>
    Optimizer,
    /// <summary>ZeRO-Infinity / FSDP CPUOffload: parameters as well (and therefore everything but the layer being computed).</summary>
    Params,
}

/// <summary>Which runtime the layout is written for; decides the exporter and a few engine-specific buffers.</summary>
public enum ParallelEngine
{
    /// <summary>One GPU, or DDP without sharding.</summary>
    DataParallel,
    DeepSpeed,
    Fsdp,
}

/// <summary>The three classes of model state that ZeRO partitions (Rajbhandari et al. 2019, §5).</summary>
public enum StateKind
{
    /// <summary>The compute-precision weights (2Ψ under mixed precision; NF4 for a QLoRA base).</summary>
    Parameters,
    /// <summary>Gradients of trainable parameters in the compute precision (2Ψ).</summary>
    Gradients,
    /// <summary>Everything the optimizer owns: fp32 master copy, moments (KΨ, K = 12 for mixed-precision Adam).</summary>
    OptimizerStates,
}
