using System.Globalization;
using Afinado.Planner.Devices;

namespace Afinado.Planner.Memory;

/// <summary>Builds a <see cref="MemoryLedger"/> for a job on a device kind; formulas are only rendered when <c>explain</c> is set (the fit search skips them).</summary>
public static class LedgerBuilder
{
    /// <summary>CUDA context with lazy module loading (CUDA ≥ 11.7): 287–400 MB measured (memory.md §5.2).</summary>
    public const double CudaContextBytes = 300e6;
    /// <summary>Caching-allocator slack on top of allocated bytes, as a fraction of the peak (assumption: §5.2 reports 0.25–6 GiB reserved-but-unallocated).</summary>
    public const double AllocatorReserveFraction = 0.05;

    public static MemoryLedger Build(ModelProfile profile, Job job, DeviceKind device, bool explain = true)
    {
        var tensors = job.IsTraining
            ? TrainingLedger.Entries(profile, job, device, explain)
            : InferenceLedger.Entries(profile, job, device, explain);
        var (peak, _) = MemoryLedger.Peak(tensors);
        return new MemoryLedger(tensors, RuntimeEntries((long)Math.Ceiling(peak), device, explain));
    }

    private static List<LedgerEntry> RuntimeEntries(long peak, DeviceKind device, bool explain)
    {
        if (device == DeviceKind.Cpu) return [];
        return
        [
            new("CUDA context", Category.Runtime, Phase.None, CudaContextBytes,
                explain ? "constant 300 MB (lazy module loading, CUDA ≥ 11.7)" : "", "memory.md §5.2 (pytorch #107667, PR #86509)"),
            new("allocator reserve", Category.Runtime, Phase.None, peak * AllocatorReserveFraction,
                explain ? $"{AllocatorReserveFraction:P0} of peak allocated (caching-allocator slack)" : "", "assumption within memory.md §5.2 range (0.25–6 GiB)"),
        ];
    }

    internal static string N(double n) => n.ToString("N0", CultureInfo.InvariantCulture);
    internal static string B(double bytesPerElement) => bytesPerElement.ToString("0.###", CultureInfo.InvariantCulture);
}
