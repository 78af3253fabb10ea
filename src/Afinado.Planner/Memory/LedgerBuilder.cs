using System.Globalization;
using Afinado.Planner.Allocator;
using Afinado.Planner.Devices;

namespace Afinado.Planner.Memory;

/// <summary>Builds a <see cref="MemoryLedger"/> for a job on a device kind; formulas are only rendered when <c>explain</c> is set (the fit search skips them).</summary>
public static class LedgerBuilder
{
    /// <summary>Caching-allocator slack on top of allocated bytes, as a fraction of the peak, for steps the replay does not
    /// cover (assumption: §5.2 reports 0.25–6 GiB reserved-but-unallocated).</summary>
    public const double AllocatorReserveFraction = 0.05;
    /// <summary>
    /// Resident memory a TorchSharp/libtorch CPU training process holds beyond its tensors once it has run backward and
    /// optimizer steps (autograd engine and allocator bookkeeping, malloc arenas, .NET heap). Measured, not derived:
    /// <c>TrainingBench memprobe</c> RSS after the third step less weights, gradients and AdamW state was 8.1–11.0 MiB
    /// over 5 configurations (9.6M and 1.7M parameters; full and LoRA; SDPA and eager), independent of model size; median 8.9 MiB.
    /// </summary>
    public const double CpuTrainingRuntimeBytes = 8.9 * 1048576;
    /// <summary>
    /// The same for a training process that only runs forward passes (MeZO-style <c>es-direct</c>: no backward, no optimizer
    /// step). Measured, not derived: VmHWM growth less the ledger's tensors over the 6 <c>es-direct</c> rows of
    /// bench/ground-truth/cpu-rules-measured.csv was 6.4–8.4 MiB, median 7.2 MiB. The same residual over the 5 ES + AdamW rows
    /// (8.3–9.2 MiB, median 8.7) matches <see cref="CpuTrainingRuntimeBytes"/>, measured independently on backprop runs, so
    /// every rule that steps an optimizer uses that one.
    /// </summary>
    public const double CpuForwardOnlyRuntimeBytes = 7.2 * 1048576;

    /// <param name="replay">Replay the step through the caching allocator for the fragmentation line (GPU plans); the
    /// fit search first builds without it, since the tensors alone already decide most configurations.</param>
    public static MemoryLedger Build(ModelProfile profile, Job job, DeviceKind device, bool explain = true, bool replay = true)
    {
        var tensors = !job.IsTraining ? InferenceLedger.Entries(profile, job, device, explain)
            : job.Rule == LearningRule.Backprop ? TrainingLedger.Entries(profile, job, device, explain)
            : RuleLedger.Entries(profile, job, device, explain);
        double peak = MemoryPeak.Of(tensors).Bytes;
        // Absurd sizes are bad input before anything is traced (a trace of them would overflow its byte counts).
        MemoryLedger.ToBytes(peak, "peak");
        ReplayResult? replayed = null;
        string? notReplayed = device == DeviceKind.Gpu ? ReservedMemory.NotReplayed(profile, job) : null;
        if (device == DeviceKind.Gpu && replay && notReplayed is null)
            replayed = ReservedMemory.Replay(profile, job);
        var runtime = device == DeviceKind.Cpu ? CpuRuntime(job, explain)
            : GpuRuntime((long)Math.Ceiling(peak), job, replayed, notReplayed, replay, explain);
        return new MemoryLedger(tensors, runtime) { Replay = replayed };
    }

    private static List<LedgerEntry> GpuRuntime(long peak, Job job, ReplayResult? replayed, string? notReplayed, bool replay, bool explain)
    {
        var stack = job.Stack;
        var list = new List<LedgerEntry>(3)
        {
            new(LineKind.CudaContext, $"CUDA context and kernels ({stack.Id})", Phase.None, stack.OutsideAllocatorBytes,
                explain ? $"{stack.Description}; outside PyTorch's allocator (nvidia-smi counts it, memory_reserved does not)" : "", stack.Source),
        };
        if (stack.WorkspaceBytes > 0)
            list.Add(new(LineKind.CublasWorkspaces, "cuBLAS/cuBLASLt workspaces", Phase.None, stack.WorkspaceBytes,
                explain ? $"{stack.WorkspaceAllocations.Count} × {N(stack.WorkspaceAllocations[0] / 1048576.0)} MiB taken from the allocator at the first matmul" : "", stack.Source));
        if (replayed is { } r)
        {
            // The formulas' peak is one of their moments; the op-by-op trace may find a higher one (the last layer's
            // attention backward, with every other layer's activations still live). The reserved figure follows the replay,
            // which holds those tensors in its segments: it is never below the replay's own.
            long beyond = r.LargestAllocatedBytes - peak - stack.WorkspaceBytes;
            if (beyond > 0)
                list.Add(new(LineKind.ReplayedPeakAboveFormulas, "replayed step's peak above the formulas'", Phase.None, beyond,
                    explain ? $"allocated {N(r.LargestAllocatedBytes)} B at the replayed step's peak − formulas' peak {N(peak)} B − workspaces: tensors live at a moment the formulas do not model" : "",
                    "Afinado.Planner.Allocator trace, op by op (ReplayAllocatedGroundTruthTests: within 0.25 % of max_memory_allocated on the H100 grid)"));
            list.Add(new(LineKind.AllocatorFragmentation, "allocator fragmentation (replayed)", Phase.None, r.FragmentationBytes,
                explain ? $"reserved {N(r.PeakReservedBytes)} − allocated {N(r.LargestAllocatedBytes)} B at the peak of the replayed step" +
                    (job.AllocConf.ToString() is { Length: > 0 } conf ? $" ({conf})" : "") + (r.Retries > 0 ? $"; {r.Retries} cache releases" : "") : "",
                "CUDACachingAllocator.cpp (PyTorch 2.x) rules replayed over the step's allocations: Afinado.Planner.Allocator"));
        }
        else if (replay || notReplayed is not null)
            list.Add(new(LineKind.AllocatorReserve, "allocator reserve", Phase.None, peak * AllocatorReserveFraction,
                explain ? $"{AllocatorReserveFraction:P0} of peak allocated (not replayed: {notReplayed ?? "search bound"})" : "", "assumption within memory.md §5.2 range (0.25–6 GiB)"));
        return list;
    }

    private static List<LedgerEntry> CpuRuntime(Job job, bool explain) =>
        !job.IsTraining ? []
                : job.Rule == LearningRule.EsDirect
                ? [new(LineKind.CpuForwardOnlyRuntime, "CPU forward-only training runtime (libtorch/TorchSharp, measured)", Phase.None, CpuForwardOnlyRuntimeBytes,
                    explain ? "constant 7.2 MiB held by a training process that never runs backward or an optimizer step" : "",
                    "measured: bench/ground-truth/cpu-rules-measured.csv, 6 es-direct rows: VmHWM growth less the ledger's tensors, 6.4–8.4 MiB, median 7.2")]
                : [new(LineKind.CpuTrainingRuntime, "CPU training runtime (libtorch/TorchSharp, measured)", Phase.None, CpuTrainingRuntimeBytes,
                    explain ? "constant 8.9 MiB held after the first backward and optimizer steps, independent of model size" : "",
                    "measured: bench/training TrainingBench memprobe, RSS after step 3 less weights, gradients, AdamW state (8.1–11.0 MiB, 5 configurations)")];

    internal static string N(double n) => n.ToString("N0", CultureInfo.InvariantCulture);
    internal static string B(double bytesPerElement) => bytesPerElement.ToString("0.###", CultureInfo.InvariantCulture);
}
