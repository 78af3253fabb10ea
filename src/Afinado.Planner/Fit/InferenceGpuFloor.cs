using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>
/// For inference that fits no single GPU: the fewest GPUs of that kind any split could use. Every layout (transformers'
/// <c>device_map="auto"</c>, tensor parallelism) keeps each weight and each layer's KV cache on some GPU, and every GPU pays
/// its own CUDA context, so ⌈(weights + KV cache) / (capacity − context)⌉ is a lower bound, nothing more: the activations,
/// logits and allocator slack of a real split come on top. Multi-GPU inference layouts themselves are not planned.
/// </summary>
public sealed record InferenceGpuFloor(int Gpus, long WeightsAndCacheBytes, long UsablePerGpuBytes)
{
    /// <summary>The bound for a job that does not fit <paramref name="device"/> (the caller's verdict), from its ledger there.</summary>
    public static InferenceGpuFloor? For(MemoryLedger ledger, Job job, Device device)
    {
        if (job.IsTraining || device.Kind != DeviceKind.Gpu || device.CapacityBytes <= 0) return null;
        long usable = device.CapacityBytes - ledger.OutsideAllocatorBytes;
        if (usable <= 0) return null;
        double weights = ledger.Tensors.Where(e => e.Category == Category.Weights).Sum(e => e.Bytes);
        double cache = ledger.Tensors.Where(e => e.Category == Category.KvCache).Select(e => e.Bytes).DefaultIfEmpty(0).Max();
        long held = (long)Math.Ceiling(weights + cache);
        long gpus = (held + usable - 1) / usable;
        // One GPU is no news for a job that does not fit one: the bound says something from two on.
        return gpus < 2 ? null : new InferenceGpuFloor((int)Math.Min(int.MaxValue, gpus), held, usable);
    }
}
