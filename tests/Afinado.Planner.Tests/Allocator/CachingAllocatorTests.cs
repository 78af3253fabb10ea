using Afinado.Planner.Memory;
using Afinado.Planner.Allocator;

namespace Afinado.Planner.Tests.Allocator;

/// <summary>The replay follows c10/cuda/CUDACachingAllocator.cpp rule by rule; each test pins one rule.</summary>
public class CachingAllocatorTests
{
    private const long MiB = 1 << 20;

    [Theory]
    [InlineData(1, 512)]
    [InlineData(512, 512)]
    [InlineData(513, 1024)]
    [InlineData(1_000_000, 1_000_448)]
    public void Requests_round_up_to_512_bytes(long bytes, long rounded) => Assert.Equal(rounded, CachingAllocator.RoundSize(bytes));

    [Theory]
    [InlineData(512, 2 * MiB)]            // small pool: 2 MiB segments
    [InlineData(MiB, 2 * MiB)]            // 1 MiB is still small (<= kSmallSize)
    [InlineData(MiB + 512, 20 * MiB)]     // 1–10 MiB: a 20 MiB segment to split
    [InlineData(10 * MiB - 512, 20 * MiB)]
    [InlineData(10 * MiB, 10 * MiB)]      // from 10 MiB: rounded up to 2 MiB
    [InlineData(11 * MiB, 12 * MiB)]
    public void Segment_sizes_follow_get_allocation_size(long size, long segment) => Assert.Equal(segment, CachingAllocator.AllocationSize(size));

    [Fact]
    public void Small_requests_share_a_2_MiB_segment()
    {
        var a = new CachingAllocator();
        for (int i = 0; i < 4; i++) a.Malloc(512 * 1024);
        Assert.Equal(2 * MiB, a.Reserved);
        a.Malloc(512 * 1024);
        Assert.Equal(4 * MiB, a.Reserved);
    }

    [Fact]
    public void A_medium_request_splits_a_20_MiB_segment_and_the_rest_is_reused()
    {
        var a = new CachingAllocator();
        a.Malloc(5 * MiB);
        Assert.Equal(20 * MiB, a.Reserved);
        a.Malloc(5 * MiB);
        a.Malloc(5 * MiB);
        Assert.Equal(20 * MiB, a.Reserved);
        Assert.Equal(15 * MiB, a.Allocated);
    }

    [Fact]
    public void A_large_block_is_split_only_when_more_than_1_MiB_remains()
    {
        var a = new CachingAllocator();
        int h = a.Malloc(100 * MiB);
        a.Free(h);
        // 99.5 MiB from the cached 100 MiB block: 0.5 MiB would remain, not worth a block, so the whole block is used.
        a.Malloc(100 * MiB - 512 * 1024);
        Assert.Equal(100 * MiB, a.Allocated);
        Assert.Equal(100 * MiB, a.Reserved);
    }

    [Fact]
    public void Best_fit_takes_the_smallest_cached_block_that_holds_the_request()
    {
        var a = new CachingAllocator();
        int big = a.Malloc(200 * MiB), keep = a.Malloc(12 * MiB), small = a.Malloc(60 * MiB);
        a.Free(big);
        a.Free(small);
        a.Malloc(50 * MiB);
        // The 60 MiB block was split (10 MiB left), the 200 MiB one untouched: a 190 MiB request still needs no new segment.
        a.Malloc(190 * MiB);
        Assert.Equal(272 * MiB, a.Reserved);
        _ = keep;
    }

    [Fact]
    public void Freed_neighbours_merge_back_into_one_block()
    {
        var a = new CachingAllocator();
        int whole = a.Malloc(300 * MiB);
        a.Free(whole);
        int x = a.Malloc(100 * MiB), y = a.Malloc(100 * MiB), z = a.Malloc(100 * MiB);
        a.Free(x);
        a.Free(z);
        a.Free(y);
        a.Malloc(300 * MiB);
        Assert.Equal(300 * MiB, a.Reserved);
    }

    [Fact]
    public void A_freed_block_is_not_reused_by_another_stream()
    {
        var a = new CachingAllocator();
        a.Free(a.Malloc(100 * MiB, stream: 0));
        a.Malloc(100 * MiB, stream: 1);
        Assert.Equal(200 * MiB, a.Reserved);
        a.Malloc(100 * MiB, stream: 0);
        Assert.Equal(200 * MiB, a.Reserved);
    }

    [Fact]
    public void Fragmentation_the_growing_request_does_not_fit_the_freed_smaller_block()
    {
        // The pattern of a KV cache grown by torch.cat: each step a slightly larger tensor, the old one freed after.
        var a = new CachingAllocator();
        int cache = a.Malloc(100 * MiB);
        for (int step = 1; step <= 3; step++)
        {
            int grown = a.Malloc((100 + 2 * step) * MiB);
            a.Free(cache);
            cache = grown;
        }
        Assert.Equal(106 * MiB, a.Allocated);
        Assert.True(a.Reserved > 2 * a.Allocated, $"reserved {a.Reserved / MiB} MiB");
    }

    [Fact]
    public void Out_of_memory_releases_cached_segments_and_retries_before_failing()
    {
        var a = new CachingAllocator(capacityBytes: 300 * MiB);
        a.Free(a.Malloc(100 * MiB));
        // 100 MiB cached + 250 MiB new > 300 MiB, and the cached block is too small: it is released and the request retried.
        Assert.True(a.Malloc(250 * MiB) >= 0);
        Assert.Equal(1, a.Retries);
        Assert.Equal(250 * MiB, a.Reserved);
        // Nothing left to release: a real out-of-memory.
        Assert.Equal(-1, a.Malloc(100 * MiB));
    }

    [Fact]
    public void A_split_segment_cannot_be_released_so_it_still_fails()
    {
        var a = new CachingAllocator(capacityBytes: 300 * MiB);
        int big = a.Malloc(250 * MiB);
        a.Free(big);
        int pin = a.Malloc(10 * MiB);  // splits the cached 250 MiB block: that segment can no longer be released
        Assert.Equal(-1, a.Malloc(260 * MiB));
        _ = pin;
    }

    [Fact]
    public void Max_split_size_keeps_oversize_blocks_whole_and_away_from_small_requests()
    {
        var a = new CachingAllocator(new AllocatorSettings { MaxSplitSizeBytes = 128 * MiB });
        a.Free(a.Malloc(400 * MiB));
        a.Malloc(50 * MiB);                 // may not take the cached 400 MiB block
        Assert.Equal(450 * MiB, a.Reserved);
        a.Malloc(390 * MiB);                // an oversize request takes it if it wastes < 20 MiB, unsplit
        Assert.Equal(450 * MiB, a.Reserved);
        Assert.Equal(450 * MiB, a.Allocated);
    }

    [Fact]
    public void Expandable_segments_grow_in_pages()
    {
        var a = new CachingAllocator(new AllocatorSettings { ExpandableSegments = true });
        a.Malloc(30 * MiB);
        Assert.Equal(40 * MiB, a.Reserved);   // two 20 MiB pages of the large pool
        a.Malloc(5 * MiB);                    // fits the free 10 MiB at the end of the mapped range
        Assert.Equal(40 * MiB, a.Reserved);
        a.Malloc(300 * 1024);                 // small pool: its own segment, 2 MiB pages
        Assert.Equal(42 * MiB, a.Reserved);
    }

    [Fact]
    public void Expandable_segments_stop_the_growing_cache_pattern_from_reserving_more_and_more()
    {
        static long Run(AllocatorSettings s)
        {
            var a = new CachingAllocator(s);
            int cache = a.Malloc(100 * MiB);
            for (int step = 1; step <= 12; step++)
            {
                int grown = a.Malloc((100 + 2 * step) * MiB);
                a.Free(cache);
                cache = grown;
            }
            return a.Reserved;
        }
        long fixedSegments = Run(AllocatorSettings.Default), expandable = Run(new AllocatorSettings { ExpandableSegments = true });
        // Fixed segments: every freed cache is a separate segment too small for the next one. Expandable: freed ranges
        // of the one segment merge, and after a few steps the next cache fits in them.
        Assert.True(fixedSegments > 1000 * MiB, $"fixed {fixedSegments / MiB} MiB");
        Assert.True(expandable < fixedSegments / 2, $"expandable {expandable / MiB} MiB vs fixed {fixedSegments / MiB} MiB");
    }

    [Fact]
    public void Empty_cache_returns_whole_free_segments()
    {
        var a = new CachingAllocator();
        int keep = a.Malloc(40 * MiB);
        a.Free(a.Malloc(60 * MiB));
        a.EmptyCache();
        Assert.Equal(40 * MiB, a.Reserved);
        _ = keep;
    }

    [Theory]
    [InlineData("expandable_segments:True", true, null)]
    [InlineData("expandable_segments:False,max_split_size_mb:128", false, 128L << 20)]
    [InlineData("", false, null)]
    public void Alloc_conf_parses_like_pytorch(string text, bool expandable, long? maxSplit)
    {
        var s = AllocatorSettings.Parse(text);
        Assert.Equal(expandable, s.ExpandableSegments);
        Assert.Equal(maxSplit, s.MaxSplitSizeBytes);
    }

    [Theory]
    [InlineData("expandable_segments")]
    [InlineData("expandable_segments:yes")]
    [InlineData("max_split_size_mb:20")]
    [InlineData("max_split_size_mb:-5")]
    [InlineData("garbage_collection_threshold:0.6")]
    public void Bad_alloc_conf_names_the_flag_and_the_accepted_values(string text)
    {
        var e = Assert.Throws<InputError>(() => AllocatorSettings.Parse(text));
        Assert.Equal(JobParameters.AllocConf, e.Parameter);
    }

    [Fact]
    public void Bad_stack_names_the_flag_and_lists_the_stacks()
    {
        var e = Assert.Throws<InputError>(() => RuntimeStack.Parse("torch9"));
        Assert.Equal(JobParameters.Stack, e.Parameter);
        Assert.Contains("torch2.11-cuda13", e.Message);
    }
}
