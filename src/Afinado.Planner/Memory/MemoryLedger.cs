using Afinado.Planner.Fit;

namespace Afinado.Planner.Memory;

/// <summary>
/// Every tensor class of a job, with bytes, lifetime, formula and source. Totals, the peak phase and the breakdown
/// table are views over the entries: a new feature adds entries, never a special case in a total.
/// </summary>
public sealed class MemoryLedger
{
    public MemoryLedger(IReadOnlyList<LedgerEntry> tensors, IReadOnlyList<LedgerEntry> runtime)
    {
        Tensors = tensors;
        Runtime = runtime;
        var peak = MemoryPeak.Of(tensors);
        PeakPhase = peak.Moment;
        PeakBytes = ToBytes(peak.Bytes, "peak");
        double runtimeBytes = 0;
        foreach (var e in runtime) runtimeBytes += e.Bytes;
        RuntimeBytes = ToBytes(runtimeBytes, "runtime overhead");
        TotalBytes = checked(PeakBytes + RuntimeBytes);
    }

    /// <summary>Tensors (comparable to <c>torch.cuda.max_memory_allocated</c> at their peak).</summary>
    public IReadOnlyList<LedgerEntry> Tensors { get; }
    /// <summary>Runtime overheads on top of tensors: CUDA context, allocator reserve (what nvidia-smi adds).</summary>
    public IReadOnlyList<LedgerEntry> Runtime { get; }
    public Phase PeakPhase { get; }
    public long PeakBytes { get; }
    public long RuntimeBytes { get; }
    /// <summary>Peak plus runtime overheads: what nvidia-smi would show; the fit verdict uses it.</summary>
    public long TotalBytes { get; }

    /// <summary>The caching-allocator replay behind the fragmentation line (null: CPU, not replayed, or a search bound).</summary>
    public Allocator.ReplayResult? Replay { get; init; }

    /// <summary>Peak tensors plus what the allocator holds beyond them (workspaces, fragmentation): ≈ max_memory_reserved.</summary>
    public long ReservedBytes => checked(PeakBytes + (long)Math.Ceiling(Runtime.Where(e => e.Kind.IsReservedInsideAllocator()).Sum(e => e.Bytes)));

    /// <summary>Reserved but unallocated at the peak (replayed, or assumed where the step is not replayed).</summary>
    public long FragmentationBytes => (long)Math.Ceiling(Runtime.Where(e => e.Kind.IsFragmentation()).Sum(e => e.Bytes));

    /// <summary>Runtime outside the allocator (CUDA context and kernels; a CPU process's runtime).</summary>
    public long OutsideAllocatorBytes => (long)Math.Ceiling(Runtime.Where(e => e.Kind.IsRuntimeOutsideAllocator()).Sum(e => e.Bytes));

    /// <summary>The entries live at the peak.</summary>
    public IEnumerable<LedgerEntry> AtPeak => Tensors.Where(e => (e.Phases & PeakPhase) != 0);

    public double BytesAt(Phase moment) => MemoryPeak.At(Tensors, moment);

    /// <summary>Sums beyond 2⁶² bytes mean absurd input (10¹³ parameters, 10⁷-token contexts), reported instead of overflowing.</summary>
    internal static long ToBytes(double bytes, string what)
    {
        if (double.IsNaN(bytes) || bytes > 4.6e18)
            throw new InputError($"{PlanParameters.Model}/{JobParameters.Batch}/{JobParameters.Seq}", $"the {what} would be {bytes:E2} bytes, beyond any machine", "Check the model size, batch and sequence length.");
        return (long)Math.Ceiling(bytes);
    }
}
