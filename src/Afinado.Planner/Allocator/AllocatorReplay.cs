namespace Afinado.Planner.Allocator;

/// <summary>Peaks of one measured iteration (after <c>reset_peak_memory_stats</c> at its start).</summary>
public readonly record struct IterationPeak(int Iteration, long AllocatedBytes, long ReservedBytes);

/// <summary>What the caching allocator did with a trace: peaks over the measured iterations (the larger iteration wins),
/// and whether it ran out of memory after releasing its cache and retrying.</summary>
public sealed record ReplayResult(long PeakAllocatedBytes, long PeakReservedBytes, IReadOnlyList<IterationPeak> Iterations, bool OutOfMemory, int Retries)
{
    /// <summary>The largest allocated figure over the whole trace (build, prefill, iterations): for a decode job the
    /// prefill's, whose segments the decode steps inherit.</summary>
    public long RunPeakAllocatedBytes { get; init; }

    /// <summary>The largest allocated figure of the run: the measured iterations' peak or, when higher, the run's (a decode
    /// job's prefill).</summary>
    public long LargestAllocatedBytes => Math.Max(PeakAllocatedBytes, RunPeakAllocatedBytes);

    /// <summary>Reserved beyond the largest allocated figure of the run: what the caching allocator keeps in segments no
    /// tensor fills, at its worst.</summary>
    public long FragmentationBytes => Math.Max(0, PeakReservedBytes - LargestAllocatedBytes);
}

public static class AllocatorReplay
{
    /// <summary>Replays <paramref name="trace"/>; with <paramref name="capacityBytes"/> the allocator may reserve at most that
    /// much and reports out-of-memory only when releasing cached blocks and retrying does not help.</summary>
    public static ReplayResult Run(AllocationTrace trace, AllocatorSettings? settings = null, long? capacityBytes = null)
    {
        // This thread's allocator and handle table, emptied: a replay reads ~30,000 events, and fresh block arrays and
        // a handle per tensor (large-object-heap arrays, zeroed and faulted in) cost a fifth of it.
        var allocator = _allocator ??= new CachingAllocator();
        allocator.Reset(settings, capacityBytes);
        var handles = _handles ??= new int[4096];
        var iterations = new List<IterationPeak>(2);
        int iteration = 0;
        long runPeak = 0;
        foreach (ref readonly var e in trace.EventSpan)
        {
            switch (e.Kind)
            {
                case TraceEventKind.Allocate:
                    int h = allocator.Malloc(e.Bytes, e.Stream);
                    if (h < 0)
                    {
                        if (iteration > 0) iterations.Add(new(iteration, allocator.PeakAllocated, allocator.PeakReserved));
                        return Result(iterations, allocator, oom: true, Math.Max(runPeak, allocator.PeakAllocated));
                    }
                    if (e.Tensor >= handles.Length)
                    {
                        Array.Resize(ref handles, Math.Max(e.Tensor + 1, handles.Length * 2));
                        _handles = handles;
                    }
                    handles[e.Tensor] = h;
                    break;
                case TraceEventKind.Free:
                    allocator.Free(handles[e.Tensor]);
                    break;
                case TraceEventKind.IterationStart when e.Tensor == 0:
                    // The model is built: from here on, the run's allocated peak counts (a build transient such as a
                    // tied head's first copy leaves a cached block, which is fragmentation, not a tensor of the run).
                    allocator.ResetPeaks();
                    break;
                case TraceEventKind.IterationStart:
                    runPeak = Math.Max(runPeak, allocator.PeakAllocated);
                    if (iteration > 0) iterations.Add(new(iteration, allocator.PeakAllocated, allocator.PeakReserved));
                    iteration = e.Tensor;
                    allocator.ResetPeaks();
                    break;
            }
        }
        if (iteration > 0) iterations.Add(new(iteration, allocator.PeakAllocated, allocator.PeakReserved));
        return Result(iterations, allocator, oom: false, Math.Max(runPeak, allocator.PeakAllocated));
    }

    [ThreadStatic] private static CachingAllocator? _allocator;
    [ThreadStatic] private static int[]? _handles;

    private static ReplayResult Result(List<IterationPeak> iterations, CachingAllocator a, bool oom, long runPeak) =>
        (iterations.Count == 0
            ? new ReplayResult(a.PeakAllocated, a.PeakReserved, iterations, oom, a.Retries)
            : new ReplayResult(iterations.Max(i => i.AllocatedBytes), iterations.Max(i => i.ReservedBytes), iterations, oom, a.Retries))
        with { RunPeakAllocatedBytes = runPeak };
}
