using Afinado.Planner.Allocator;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>
/// Does a job fit a device? On a GPU the answer uses what the GPU really holds: the step replayed through PyTorch's
/// caching allocator (reserved bytes) plus the runtime outside it. A total above the capacity is not yet an OOM: PyTorch
/// releases its cached segments and retries before raising "CUDA out of memory", so such a job is replayed again with
/// the capacity as a hard limit, and only an OOM there is an OOM verdict. Every verdict, search, fix and layout asks here.
/// </summary>
public static class FitCheck
{
    /// <summary>
    /// Within this share of the total, a verdict says "borderline" instead of a confident fits / OOM: the replay's total vs
    /// the process's NVML memory over the asserted H100 rows (`afinado validate`, source "… nvml") lies within ±5.2 %.
    /// </summary>
    public const double BorderlineFraction = 0.055;

    /// <summary>The verdict for a plan's ledger (built with the replay), as the GPU runs the job (<see cref="DeviceSupport"/>):
    /// a kernel it lacks makes the job unable to run; weights it dequantizes on load, or an SDPA step it runs with the math
    /// kernel, are judged on that job's own ledger, and the verdict says so.</summary>
    public static DeviceVerdict Verdict(Device device, MemoryLedger ledger, ModelProfile profile, Job job) =>
        Judged(device, ledger, profile, job) with { Advice = DeviceSupport.Advice(job, device) };

    private static DeviceVerdict Judged(Device device, MemoryLedger ledger, ModelProfile profile, Job job)
    {
        if (DeviceSupport.Unsupported(profile.Architecture, job, device) is { } why)
            return Judge(device, ledger, profile, job) with { Fits = false, Borderline = false, FitsAfterCacheRelease = false, Unsupported = why };
        var onDevice = DeviceSupport.OnDevice(profile.Architecture, job, device);
        if (ReferenceEquals(onDevice, job)) return Judge(device, ledger, profile, job);
        var held = LedgerBuilder.Build(profile, onDevice, device.Kind, explain: false);
        return Judge(device, held, profile, onDevice) with
        {
            Dequantized = DeviceSupport.For(job, device), SdpaMath = DeviceSupport.SdpaMath(profile.Architecture, job, device),
            TotalOnDeviceBytes = held.TotalBytes,
        };
    }

    private static DeviceVerdict Judge(Device device, MemoryLedger ledger, ModelProfile profile, Job job)
    {
        long cap = device.CapacityBytes;
        if (cap <= 0) return new DeviceVerdict(device, true, 0);
        long total = ledger.TotalBytes, headroom = cap - total;
        bool fits = total <= cap, afterRelease = false;
        int retries = 0;
        long? reservedAfter = null;
        if (!fits && device.Kind == DeviceKind.Gpu && ledger.Replay is not null && TensorsAndRuntime(ledger) <= cap)
        {
            var limited = ReservedMemory.Replay(profile, job, cap - ledger.OutsideAllocatorBytes);
            fits = afterRelease = !limited.OutOfMemory;
            retries = limited.Retries;
            if (afterRelease) reservedAfter = limited.PeakReservedBytes;
        }
        bool borderline = device.Kind == DeviceKind.Gpu && (afterRelease || Math.Abs(headroom) < BorderlineFraction * total);
        return new DeviceVerdict(device, fits, headroom)
        {
            Borderline = borderline, FitsAfterCacheRelease = afterRelease, CacheReleases = retries,
            ReservedAfterReleaseBytes = reservedAfter, TotalAfterReleaseBytes = reservedAfter + ledger.OutsideAllocatorBytes,
        };
    }

    /// <summary>
    /// The same answer as <see cref="Verdict"/> for searches, cheaper: the tensors alone (plus the runtime) already rule
    /// out most configurations, and only those left are replayed. Both bounds are exact: the replay never allocates less
    /// than the tensors' peak, and a replay that never exceeds the capacity runs the same with the capacity as a limit.
    /// </summary>
    public static bool Fits(ModelProfile profile, Job job, Device device, DeviceKind kind)
    {
        if (device.CapacityBytes <= 0) return true;
        if (DeviceSupport.Unsupported(profile.Architecture, job, device) is not null) return false;
        job = DeviceSupport.OnDevice(profile.Architecture, job, device);
        var bound = LedgerBuilder.Build(profile, job, kind, explain: false, replay: false);
        if (bound.TotalBytes > device.CapacityBytes) return false;
        if (kind == DeviceKind.Cpu || bound.Runtime.Any(e => e.Kind == LineKind.AllocatorReserve)) return true;
        var full = LedgerBuilder.Build(profile, job, kind, explain: false);
        return Verdict(device, full, profile, job).Fits;
    }

    /// <summary>Peak tensors, workspaces and runtime outside the allocator: what no allocator behaviour can lower.</summary>
    private static long TensorsAndRuntime(MemoryLedger l) =>
        l.PeakBytes + l.OutsideAllocatorBytes + (long)l.Runtime.Where(e => e.Kind == LineKind.CublasWorkspaces).Sum(e => e.Bytes);
}
