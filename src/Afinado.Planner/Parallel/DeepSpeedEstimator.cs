namespace Afinado.Planner.Parallel;

/// <summary>
/// DeepSpeed's own model-state estimators, reproduced formula for formula as a validation oracle
/// (deepspeed/runtime/zero/stage_1_and_2.py, stage3.py and docs/code-docs/source/memory.rst; memory.md §2.2,
/// ecosystem.md §6.2). They cover model states only: no activations, buckets, NCCL or CUDA context.
/// All results in bytes.
/// </summary>
public static class DeepSpeedEstimator
{
    /// <summary>DeepSpeed's conservative factor on CPU estimates.</summary>
    public const double BufferFactor = 1.5;

    public sealed record Estimate(double GpuBytes, double CpuBytes);

    /// <summary>ZeRO-2 as the code computes it since PR #5099: 2P + 18P/N, or 2P with the optimizer offloaded.</summary>
    public static Estimate Zero2(long parameters, int gpusPerNode, int nodes, bool offloadOptimizer)
    {
        int total = gpusPerNode * nodes;
        return offloadOptimizer
            ? new(2.0 * parameters, parameters * Math.Max(4.0 * total, 16.0) * BufferFactor)
            : new(2.0 * parameters + 18.0 * parameters / total, 4.0 * parameters * gpusPerNode * BufferFactor);
    }

    /// <summary>ZeRO-2 as memory.rst still documents it (and as its t5-3b table was printed): 4P + 16P/N.</summary>
    public static Estimate Zero2AsDocumented(long parameters, int gpusPerNode, int nodes, bool offloadOptimizer)
    {
        int total = gpusPerNode * nodes;
        var code = Zero2(parameters, gpusPerNode, nodes, offloadOptimizer);
        return offloadOptimizer ? code : code with { GpuBytes = 4.0 * parameters + 16.0 * parameters / total };
    }

    /// <summary>ZeRO-3: 4·L (largest layer gathered: 16-bit params + grads) plus the 18P/N or 2P/N partitions.</summary>
    public static Estimate Zero3(long parameters, long largestLayerParameters, int gpusPerNode, int nodes,
        bool offloadOptimizer, bool offloadParams, bool zeroInit = true)
    {
        int total = gpusPerNode * nodes;
        double gpusFactor = 1.0 / nodes;
        double largest = 4.0 * largestLayerParameters;
        if (offloadOptimizer && offloadParams)
            return new(largest, parameters * (zeroInit ? 18.0 * gpusFactor : Math.Max(4.0 * gpusPerNode, 18.0 * gpusFactor)) * BufferFactor);
        if (offloadOptimizer)
            return new(largest + Math.Floor(2.0 * parameters / total),
                parameters * (zeroInit ? 16.0 * gpusFactor : Math.Max(4.0 * gpusPerNode, 16.0 * gpusFactor)) * BufferFactor);
        return new(largest + Math.Floor(18.0 * parameters / total),
            (zeroInit ? largestLayerParameters : parameters) * 4.0 * gpusPerNode * BufferFactor);
    }
}
