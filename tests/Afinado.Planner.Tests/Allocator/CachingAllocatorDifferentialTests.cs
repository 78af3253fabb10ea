using Afinado.Planner.Allocator;

namespace Afinado.Planner.Tests.Allocator;

/// <summary>
/// The replay keeps its free blocks in indexed pools (sizes in a sorted array, blocks of one size in arrays by address)
/// for speed. These tests run random call sequences through it and through <see cref="NaiveAllocator"/>, which applies
/// the same rules by scanning plain lists, and require the same figures after every call.
/// </summary>
public class CachingAllocatorDifferentialTests
{
    private const long MiB = 1 << 20;

    public static TheoryData<int, long?, long?> Cases() => new()
    {
        { 1, null, null },
        { 2, null, 64 * MiB },
        { 3, 900 * MiB, null },
        { 4, 600 * MiB, 128 * MiB },
        { 5, 2000 * MiB, null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Indexed_pools_give_the_same_figures_as_a_linear_scan(int seed, long? capacity, long? maxSplit)
    {
        var settings = new AllocatorSettings { MaxSplitSizeBytes = maxSplit };
        for (int run = 0; run < 40; run++)
        {
            var rng = new Random(seed * 1000 + run);
            var fast = new CachingAllocator(settings, capacity);
            var naive = new NaiveAllocator(maxSplit ?? long.MaxValue, capacity);
            var live = new List<(int Fast, int Naive)>();
            for (int call = 0; call < 400; call++)
            {
                if (live.Count > 0 && rng.NextDouble() < 0.45)
                {
                    int k = rng.Next(live.Count);
                    fast.Free(live[k].Fast);
                    naive.Free(live[k].Naive);
                    live.RemoveAt(k);
                }
                else
                {
                    // Sizes that repeat (as a model's tensors do) mixed with arbitrary ones, small and large pools, two streams.
                    long bytes = rng.Next(4) switch
                    {
                        0 => rng.Next(1, (int)MiB),
                        1 => rng.Next((int)MiB, 12 * (int)MiB),
                        2 => rng.Next(1, 300) * MiB + rng.Next(0, (int)MiB),
                        _ => rng.Next(1, 6) * 32 * MiB,
                    };
                    int stream = rng.Next(10) < 8 ? 0 : 1;
                    int f = fast.Malloc(bytes, stream), n = naive.Malloc(bytes, stream);
                    Assert.Equal(n < 0, f < 0);
                    if (f >= 0) live.Add((f, n));
                }
                Assert.Equal(naive.Allocated, fast.Allocated);
                Assert.Equal(naive.Reserved, fast.Reserved);
                Assert.Equal(naive.PeakReserved, fast.PeakReserved);
                Assert.Equal(naive.Retries, fast.Retries);
            }
        }
    }

    /// <summary>CUDACachingAllocator's rules without expandable segments, by linear scans over lists: slow and obvious.</summary>
    private sealed class NaiveAllocator(long maxSplit, long? capacity)
    {
        private sealed class Block
        {
            public required List<Block> Segment;
            public required int Stream;
            public required bool Small;
            public required long Address;
            public required long Size;
            public bool InUse;
        }

        private readonly List<List<Block>> _segments = [];
        private readonly List<Block?> _handles = [];
        // Each new segment below the ones before (the replay's address order, CachingAllocator's summary).
        private long _next = 1L << 60;

        public long Allocated { get; private set; }
        public long Reserved { get; private set; }
        public long PeakReserved { get; private set; }
        public int Retries { get; private set; }

        public int Malloc(long bytes, int stream)
        {
            long size = CachingAllocator.RoundSize(bytes);
            bool small = size <= CachingAllocator.SmallSize;
            var block = BestFit(stream, small, size) ?? NewSegment(stream, small, size);
            if (block is null && maxSplit != long.MaxValue && ReleaseOversize(stream, small, size)) block = Retry(stream, small, size);
            if (block is null) { ReleaseWholeFree(); block = Retry(stream, small, size); }
            if (block is null) return -1;
            long rest = block.Size - size;
            bool split = small ? rest >= CachingAllocator.MinBlockSize : size < maxSplit && rest > CachingAllocator.SmallSize;
            if (split)
            {
                var seg = block.Segment;
                seg.Insert(seg.IndexOf(block) + 1, new Block { Segment = seg, Stream = stream, Small = small, Address = block.Address + size, Size = rest });
                block.Size = size;
            }
            block.InUse = true;
            Allocated += block.Size;
            _handles.Add(block);
            return _handles.Count - 1;
        }

        public void Free(int handle)
        {
            var block = _handles[handle]!;
            _handles[handle] = null;
            block.InUse = false;
            Allocated -= block.Size;
            var seg = block.Segment;
            int i = seg.IndexOf(block);
            if (i + 1 < seg.Count && !seg[i + 1].InUse) { block.Size += seg[i + 1].Size; seg.RemoveAt(i + 1); }
            if (i > 0 && !seg[i - 1].InUse) { seg[i - 1].Size += block.Size; seg.RemoveAt(i); }
        }

        private IEnumerable<Block> Free(int stream, bool small) =>
            _segments.SelectMany(s => s).Where(b => !b.InUse && b.Stream == stream && b.Small == small);

        private Block? BestFit(int stream, bool small, long size)
        {
            var best = Free(stream, small).Where(b => b.Size >= size).OrderBy(b => b.Size).ThenBy(b => b.Address).FirstOrDefault();
            if (best is null) return null;
            if (size < maxSplit && best.Size >= maxSplit) return null;
            if (size >= maxSplit && best.Size >= size + CachingAllocator.LargeBuffer) return null;
            return best;
        }

        private Block? Retry(int stream, bool small, long size)
        {
            Retries++;
            return NewSegment(stream, small, size);
        }

        private Block? NewSegment(int stream, bool small, long size)
        {
            long bytes = CachingAllocator.AllocationSize(size);
            if (capacity is { } cap && Reserved + bytes > cap) return null;
            var seg = new List<Block>();
            _next -= bytes;
            seg.Add(new Block { Segment = seg, Stream = stream, Small = small, Address = _next, Size = bytes });
            _segments.Add(seg);
            Reserved += bytes;
            PeakReserved = Math.Max(PeakReserved, Reserved);
            return seg[0];
        }

        private static bool Whole(Block b) => b.Segment.Count == 1 && !b.InUse;

        private bool ReleaseOversize(int stream, bool small, long size)
        {
            long key = Math.Max(size, maxSplit);
            var whole = Free(stream, small).Where(b => Whole(b) && b.Size >= maxSplit).OrderBy(b => b.Size).ThenBy(b => b.Address).ToList();
            if (whole.FirstOrDefault(b => b.Size >= key) is { } one) { Release(one); return true; }
            long released = 0;
            foreach (var b in whole.OrderByDescending(b => b.Size))
            {
                if (released >= key) break;
                released += b.Size;
                Release(b);
            }
            return released >= key;
        }

        private void ReleaseWholeFree()
        {
            foreach (var b in _segments.SelectMany(s => s).Where(Whole).ToList()) Release(b);
        }

        private void Release(Block whole)
        {
            _segments.Remove(whole.Segment);
            Reserved -= whole.Size;
        }
    }
}
