namespace Afinado.Planner.Allocator;

public enum TraceEventKind : byte { Allocate, Free, IterationStart }

/// <summary>One allocator call of a step: allocate <see cref="Bytes"/> for tensor <see cref="Tensor"/> on a stream, free
/// it, or (marker) the start of measured iteration <see cref="Tensor"/>.</summary>
public readonly record struct TraceEvent(TraceEventKind Kind, int Tensor, long Bytes, int Stream);

/// <summary>
/// The ordered allocate/free events of a job (model build, then iterations), as the caching allocator receives them.
/// Built by <see cref="StepTraces"/>; replayed by <see cref="AllocatorReplay"/>.
/// </summary>
public sealed class AllocationTrace
{
    private readonly List<TraceEvent> _events = new(4096);
    private readonly List<long> _bytes = new(2048);
    private readonly List<bool> _live = new(2048);
    // Views (a chunk of a tensor): ids with bytes for their gradients' sizes, but no storage of their own.
    private readonly List<bool> _view = new(2048);

    public IReadOnlyList<TraceEvent> Events => _events;

    /// <summary>The events as a span, for the replay's loop (no enumerator per event).</summary>
    internal ReadOnlySpan<TraceEvent> EventSpan => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_events);

    /// <summary>Tensors allocated and not yet freed, in bytes (the trace's own allocated figure, before rounding).</summary>
    public long LiveBytes { get; private set; }
    /// <summary>The largest <see cref="LiveBytes"/> seen after the first iteration marker.</summary>
    public long PeakLiveBytes { get; private set; }
    private bool _measuring;

    public int Allocate(long bytes, int stream = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        int id = _bytes.Count;
        _bytes.Add(bytes);
        _live.Add(true);
        _view.Add(false);
        _events.Add(new(TraceEventKind.Allocate, id, bytes, stream));
        LiveBytes += bytes;
        if (_measuring) PeakLiveBytes = Math.Max(PeakLiveBytes, LiveBytes);
        return id;
    }

    /// <summary>A view of <paramref name="bytes"/> (e.g. one half of <c>chunk(2)</c>): an id the allocator never sees.</summary>
    internal int View(long bytes)
    {
        int id = _bytes.Count;
        _bytes.Add(bytes);
        _live.Add(true);
        _view.Add(true);
        return id;
    }

    public void Free(int tensor)
    {
        if (!_live[tensor]) throw new InvalidOperationException($"tensor {tensor} freed twice");
        _live[tensor] = false;
        if (_view[tensor]) return;
        LiveBytes -= _bytes[tensor];
        _events.Add(new(TraceEventKind.Free, tensor, 0, 0));
    }

    public long BytesOf(int tensor) => _bytes[tensor];

    /// <summary>Empties the trace and keeps its buffers (a replay's trace is read once and thrown away; the next one
    /// reuses the memory instead of growing fresh lists of ~30,000 events).</summary>
    internal void Clear()
    {
        _events.Clear();
        _bytes.Clear();
        _live.Clear();
        _view.Clear();
        LiveBytes = PeakLiveBytes = 0;
        _measuring = false;
    }

    /// <summary>Marks the start of iteration <paramref name="n"/> (1-based): peaks restart here, as after
    /// <c>torch.cuda.reset_peak_memory_stats</c>. Iteration 0 marks the end of the model build (not a measured window).</summary>
    public void StartIteration(int n)
    {
        _events.Add(new(TraceEventKind.IterationStart, n, 0, 0));
        _measuring = true;
        PeakLiveBytes = Math.Max(PeakLiveBytes, LiveBytes);
    }
}
