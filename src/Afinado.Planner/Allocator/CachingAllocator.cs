namespace Afinado.Planner.Allocator;

/// <summary>
/// A replay of PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp, PyTorch 2.x; the rules below are
/// unchanged from 2.1 through 2.11 except where noted). It never touches a GPU: it keeps the same blocks, segments and
/// pools as the real allocator so that a sequence of allocations and frees gives the same reserved bytes.
/// <list type="bullet">
/// <item>Every request is rounded up to a multiple of 512 B (<c>round_size</c>, kMinBlockSize).</item>
/// <item>Requests ≤ 1 MiB (kSmallSize) use the small pool, others the large pool; pools are per stream (a freed block is
/// only reused by its own stream).</item>
/// <item>A request no cached block fits gets a new segment (<c>get_allocation_size</c>): 2 MiB (kSmallBuffer) for small
/// requests, 20 MiB (kLargeBuffer) for requests under 10 MiB (kMinLargeAlloc), else the size rounded up to 2 MiB (kRoundLarge).</item>
/// <item>Best fit (<c>get_free_block</c>): the smallest free block of the pool that holds the request, ties broken by
/// address. With max_split_size: a request below it never takes a block at or above it, and a request at or above it
/// takes one only if it wastes less than 20 MiB.</item>
/// <item>Splitting (<c>should_split</c>): a small-pool block is split when ≥ 512 B remain; a large-pool block when more
/// than 1 MiB remains and the request is below max_split_size (with expandable segments: whenever ≥ 512 B remain).</item>
/// <item>Freeing (<c>free_block</c>) merges the block with free neighbours of the same segment.</item>
/// <item>Out of memory (<c>malloc</c>): when a new segment does not fit, first release cached oversize blocks
/// (<c>release_available_cached_blocks</c>, only with max_split_size), then every cached segment with no block in use
/// (<c>release_cached_blocks</c>), and retry; only then raise "CUDA out of memory".</item>
/// <item>Expandable segments (<c>try_allocate_expandable_block</c>): one segment per stream and pool whose end grows by
/// mapping pages (2 MiB small pool, 20 MiB large pool, <c>find_expandable_block</c>'s segment size); a request no free
/// block holds extends the free block at the end of the mapped range; releasing unmaps that free end.</item>
/// </list>
/// Not modelled: CUDA events from <c>record_stream</c> (a freed block is reusable at once), CUDA graphs' private pools,
/// <c>garbage_collection_threshold</c> and <c>roundup_power2_divisions</c>.
/// </summary>
public sealed class CachingAllocator
{
    public const long MinBlockSize = 512;
    public const long SmallSize = 1L << 20;
    public const long SmallBuffer = 2L << 20;
    public const long LargeBuffer = 20L << 20;
    public const long MinLargeAlloc = 10L << 20;
    public const long RoundLarge = 2L << 20;

    private readonly AllocatorSettings _settings;
    private readonly long _maxSplit;
    private readonly long? _capacity;
    private readonly Dictionary<(int Stream, bool Small), BlockPool> _pools = [];
    private readonly Dictionary<(int Stream, bool Small), Segment> _expandable = [];
    private readonly List<Block?> _handles = [];
    private readonly Stack<int> _freeHandles = new();
    private long _nextAddress;

    /// <param name="settings">PYTORCH_CUDA_ALLOC_CONF equivalents.</param>
    /// <param name="capacityBytes">Memory the allocator may reserve (the GPU less what lives outside it); null = unlimited.</param>
    public CachingAllocator(AllocatorSettings? settings = null, long? capacityBytes = null)
    {
        _settings = settings ?? AllocatorSettings.Default;
        _maxSplit = _settings.MaxSplitSizeBytes ?? long.MaxValue;
        _capacity = capacityBytes;
    }

    /// <summary>Bytes in blocks handed out (rounded sizes, as <c>torch.cuda.memory_allocated</c>).</summary>
    public long Allocated { get; private set; }
    /// <summary>Bytes of device memory held in segments (as <c>torch.cuda.memory_reserved</c>).</summary>
    public long Reserved { get; private set; }
    public long PeakAllocated { get; private set; }
    public long PeakReserved { get; private set; }
    /// <summary>Times a segment could not be created and cached blocks were released to retry (<c>num_alloc_retries</c>).</summary>
    public int Retries { get; private set; }

    /// <summary>As <c>torch.cuda.reset_peak_memory_stats</c>: the peaks restart from the current figures.</summary>
    public void ResetPeaks()
    {
        PeakAllocated = Allocated;
        PeakReserved = Reserved;
    }

    /// <summary>Allocates <paramref name="bytes"/> on <paramref name="stream"/>; returns a handle, or -1 for "CUDA out of memory".</summary>
    public int Malloc(long bytes, int stream = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        long size = RoundSize(bytes);
        bool small = size <= SmallSize;
        var key = (stream, small);
        var pool = Pool(key);
        var block = FindFree(pool, size)
            ?? NewSegment(key, size)
            ?? (ReleaseOversize(pool, size) ? NewSegment(key, size, retry: true) : null)
            ?? (ReleaseCached() ? NewSegment(key, size, retry: true) : null);
        if (block is null) return -1;
        pool.Remove(block);
        if (ShouldSplit(block, size))
        {
            var rest = new Block(block.Segment, block.Address + size, block.Size - size) { Prev = block, Next = block.Next };
            if (block.Next is { } n) n.Prev = rest;
            block.Next = rest;
            block.Size = size;
            if (block.Segment.Last == block) block.Segment.Last = rest;
            pool.Add(rest);
        }
        block.InUse = true;
        Allocated += block.Size;
        PeakAllocated = Math.Max(PeakAllocated, Allocated);
        return Handle(block);
    }

    /// <summary>Returns a block to its pool, merged with free neighbours.</summary>
    public void Free(int handle)
    {
        var block = _handles[handle] ?? throw new InvalidOperationException($"handle {handle} freed twice");
        _handles[handle] = null;
        _freeHandles.Push(handle);
        block.InUse = false;
        Allocated -= block.Size;
        var pool = Pool(block.Segment.Key);
        if (block.Prev is { InUse: false } p) block = Merge(pool, p, block);
        if (block.Next is { InUse: false } n) block = Merge(pool, block, n);
        pool.Add(block);
    }

    /// <summary>As <c>torch.cuda.empty_cache</c>: releases every cached segment with no block in use.</summary>
    public void EmptyCache() => ReleaseCached();

    public static long RoundSize(long bytes) => bytes < MinBlockSize ? MinBlockSize : checked((bytes + MinBlockSize - 1) / MinBlockSize * MinBlockSize);

    public static long AllocationSize(long size) =>
        size <= SmallSize ? SmallBuffer : size < MinLargeAlloc ? LargeBuffer : checked((size + RoundLarge - 1) / RoundLarge * RoundLarge);

    // Pools of streams 0–3 in an array (a step uses one to three streams); others in the dictionary.
    private readonly BlockPool?[] _fastPools = new BlockPool?[8];

    private BlockPool Pool((int Stream, bool Small) key)
    {
        int slot = key.Stream * 2 + (key.Small ? 1 : 0);
        if ((uint)slot < (uint)_fastPools.Length && _fastPools[slot] is { } fast) return fast;
        if (!_pools.TryGetValue(key, out var pool)) _pools[key] = pool = new BlockPool();
        if ((uint)slot < (uint)_fastPools.Length) _fastPools[slot] = pool;
        return pool;
    }

    private Block? FindFree(BlockPool pool, long size)
    {
        var found = pool.SmallestAtLeast(size);
        if (found is null) return null;
        if (size < _maxSplit && found.Size >= _maxSplit) return null;
        if (size >= _maxSplit && found.Size >= size + LargeBuffer) return null;
        return found;
    }

    private bool ShouldSplit(Block block, long size)
    {
        long remaining = block.Size - size;
        if (block.Segment.Key.Small || _settings.ExpandableSegments) return remaining >= MinBlockSize;
        return size < _maxSplit && remaining > SmallSize;
    }

    /// <summary>A new segment (or, with expandable segments, more mapped pages) holding a free block of at least <paramref name="size"/>, already in its pool.</summary>
    private Block? NewSegment((int Stream, bool Small) key, long size, bool retry = false)
    {
        if (retry) Retries++;
        var pool = Pool(key);
        if (_settings.ExpandableSegments) return Expand(key, pool, size);
        long bytes = AllocationSize(size);
        if (_capacity is { } cap && Reserved + bytes > cap) return null;
        var segment = new Segment(key, _nextAddress, bytes);
        _nextAddress += bytes;
        Reserved += bytes;
        PeakReserved = Math.Max(PeakReserved, Reserved);
        var block = new Block(segment, segment.Address, bytes);
        pool.Add(block);
        return block;
    }

    private Block? Expand((int Stream, bool Small) key, BlockPool pool, long size)
    {
        long page = key.Small ? SmallBuffer : LargeBuffer;
        if (!_expandable.TryGetValue(key, out var segment))
        {
            // Virtual space for the whole device: addresses far apart so segments never touch.
            segment = new Segment(key, _nextAddress, 0);
            _nextAddress += 1L << 50;
            _expandable[key] = segment;
            }
        var tail = segment.Last is { InUse: false } last ? last : null;
        long have = tail?.Size ?? 0;
        long map = (size - have + page - 1) / page * page;
        if (_capacity is { } cap && Reserved + map > cap) return null;
        Reserved += map;
        PeakReserved = Math.Max(PeakReserved, Reserved);
        if (tail is not null)
        {
            pool.Remove(tail);
            tail.Size += map;
            pool.Add(tail);
            segment.Size += map;
            return tail;
        }
        var block = new Block(segment, segment.Address + segment.Size, map) { Prev = segment.Last };
        if (segment.Last is { } l) l.Next = block;
        segment.Last = block;
        segment.Size += map;
        pool.Add(block);
        return block;
    }

    /// <summary><c>release_available_cached_blocks</c>: with max_split_size, free whole oversize cached segments, the
    /// one that holds the request if there is one, else the largest ones until enough is released.</summary>
    private bool ReleaseOversize(BlockPool pool, long size)
    {
        if (_settings.MaxSplitSizeBytes is null || _settings.ExpandableSegments) return false;
        long key = Math.Max(size, _maxSplit);
        var whole = pool.All.Where(b => b.Prev is null && b.Next is null && b.Size >= _maxSplit).ToList();
        var one = whole.Where(b => b.Size >= key).MinBy(b => b.Size);
        if (one is not null) { Release(pool, one); return true; }
        long released = 0;
        foreach (var b in whole.OrderByDescending(b => b.Size))
        {
            if (released >= key) break;
            released += b.Size;
            Release(pool, b);
        }
        return released >= key;
    }

    /// <summary><c>release_cached_blocks</c>: every free block that is a whole segment goes back to the driver; with
    /// expandable segments, the free pages at the end of each segment are unmapped.</summary>
    private bool ReleaseCached()
    {
        foreach (var (key, pool) in _pools)
        {
            if (_settings.ExpandableSegments)
            {
                if (_expandable.TryGetValue(key, out var seg) && seg.Last is { InUse: false } tail)
                {
                    long page = key.Small ? SmallBuffer : LargeBuffer;
                    long unmap = tail.Size / page * page;
                    if (unmap == 0) continue;
                    pool.Remove(tail);
                    tail.Size -= unmap;
                    seg.Size -= unmap;
                    Reserved -= unmap;
                    if (tail.Size > 0) pool.Add(tail);
                    else
                    {
                        seg.Last = tail.Prev;
                        if (tail.Prev is { } p) p.Next = null;
                    }
                }
                continue;
            }
            foreach (var b in pool.All.Where(b => b.Prev is null && b.Next is null).ToList()) Release(pool, b);
        }
        return true;
    }

    private void Release(BlockPool pool, Block whole)
    {
        pool.Remove(whole);
        Reserved -= whole.Size;
    }

    private Block Merge(BlockPool pool, Block left, Block right)
    {
        // One of the two is the block being freed (not pooled), the other a cached neighbour: take both out before the
        // size, part of the pool's ordering, changes.
        pool.Remove(left);
        pool.Remove(right);
        left.Size += right.Size;
        left.Next = right.Next;
        if (right.Next is { } n) n.Prev = left;
        if (left.Segment.Last == right) left.Segment.Last = left;
        return left;
    }

    private int Handle(Block block)
    {
        if (_freeHandles.TryPop(out int h)) { _handles[h] = block; return h; }
        _handles.Add(block);
        return _handles.Count - 1;
    }

    private sealed class Segment((int Stream, bool Small) key, long address, long size)
    {
        public (int Stream, bool Small) Key { get; } = key;
        public long Address { get; } = address;
        public long Size { get; set; } = size;
        /// <summary>Expandable segments: the block at the end of the mapped range.</summary>
        public Block? Last { get; set; }
    }

    private sealed class Block(Segment segment, long address, long size)
    {
        public Segment Segment { get; } = segment;
        public long Address { get; } = address;
        public long Size { get; set; } = size;
        public bool InUse { get; set; }
        public Block? Prev { get; set; }
        public Block? Next { get; set; }
    }

    /// <summary>
    /// The free blocks of one pool ordered as BlockComparatorSize orders them (size, then address), kept in a sorted
    /// array: pools hold tens to hundreds of free blocks, where binary search plus a short move beats a tree.
    /// </summary>
    private sealed class BlockPool
    {
        private Block[] _items = new Block[16];
        private int _count;

        public IEnumerable<Block> All => _items.Take(_count);

        public Block? SmallestAtLeast(long size)
        {
            int lo = 0, hi = _count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_items[mid].Size < size) lo = mid + 1; else hi = mid;
            }
            return lo < _count ? _items[lo] : null;
        }

        public void Add(Block b)
        {
            if (_count == _items.Length) Array.Resize(ref _items, _count * 2);
            int i = IndexOf(b, out bool found);
            if (found) return;
            Array.Copy(_items, i, _items, i + 1, _count - i);
            _items[i] = b;
            _count++;
        }

        public bool Remove(Block b)
        {
            int i = IndexOf(b, out bool found);
            if (!found) return false;
            Array.Copy(_items, i + 1, _items, i, _count - i - 1);
            _items[--_count] = null!;
            return true;
        }

        /// <summary>Where <paramref name="b"/> is or belongs (binary search on size, then address).</summary>
        private int IndexOf(Block b, out bool found)
        {
            int lo = 0, hi = _count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                var m = _items[mid];
                int c = m.Size != b.Size ? m.Size.CompareTo(b.Size) : m.Address.CompareTo(b.Address);
                if (c < 0) lo = mid + 1; else hi = mid;
            }
            found = lo < _count && ReferenceEquals(_items[lo], b);
            return lo;
        }
    }
}
