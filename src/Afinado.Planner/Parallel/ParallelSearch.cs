namespace Afinado.Planner.Parallel;

/// <summary>Which engine family the search may choose from (the user's --zero or --fsdp picks it).</summary>
public enum EngineFamily { DeepSpeed, Fsdp }

/// <summary>One candidate layout with its ledger and verdicts.</summary>
public sealed record LayoutOption(ParallelLayout Layout, ParallelLedger Ledger, bool FitsGpu, bool FitsCpu)
{
    public bool Fits => FitsGpu && FitsCpu;
    public long HeadroomBytes(long capacity) => capacity - Ledger.GpuPeakBytes;
}

/// <summary>The chosen layout (null when none fits) and every candidate, ranked.</summary>
public sealed record LayoutSearchResult(int Gpus, int Nodes, LayoutOption? Chosen, IReadOnlyList<LayoutOption> Ranked)
{
    /// <summary>No layout fits on all <see cref="Gpus"/> GPUs, but the chosen one fits on fewer of them.</summary>
    public bool UsesFewerGpus => Chosen is not null && Chosen.Layout.Gpus < Gpus;
}

/// <summary>
/// Layout search. For a GPU count, candidates are tried from least to most communication (ZeRO paper §7: DDP, ZeRO-1
/// and ZeRO-2 move 2Ψ per step, ZeRO-3 3Ψ, offload adds PCIe traffic every step): no sharding, ZeRO-1, ZeRO-2, ZeRO-3,
/// then optimizer offload, then parameter offload (FSDP: no sharding, shard-grad-op, hybrid, full, full + offload).
/// The first that fits GPU and CPU is chosen; the others are listed: fitting ones in preference order, then the rest
/// by peak.
/// </summary>
public static class ParallelSearch
{
    public static IReadOnlyList<ParallelLayout> Candidates(int gpus, int nodes, EngineFamily family, int tensorParallel = 1, bool sequenceParallel = false,
        int expertParallel = 1)
    {
        var shapes = new List<(Sharding, Offload)>();
        if (family == EngineFamily.DeepSpeed)
        {
            shapes.Add((Sharding.None, Offload.None));
            // On one GPU a ZeRO stage without offload shards over a group of 1: it saves nothing, so only the offloads count.
            if (gpus / tensorParallel > 1) shapes.AddRange([(Sharding.Zero1, Offload.None), (Sharding.Zero2, Offload.None), (Sharding.Zero3, Offload.None)]);
            shapes.AddRange([(Sharding.Zero2, Offload.Optimizer), (Sharding.Zero3, Offload.Optimizer), (Sharding.Zero3, Offload.Params)]);
        }
        else
        {
            shapes.Add((Sharding.None, Offload.None));
            if (gpus / tensorParallel > 1)
            {
                shapes.Add((Sharding.FsdpGradOp, Offload.None));
                if (nodes > 1) shapes.Add((Sharding.FsdpHybrid, Offload.None));
                shapes.Add((Sharding.FsdpFull, Offload.None));
            }
            shapes.Add((Sharding.FsdpFull, Offload.Params));
        }
        var layouts = new List<ParallelLayout>();
        foreach (var (sharding, offload) in shapes)
        {
            var layout = new ParallelLayout { Gpus = gpus, Nodes = nodes, Sharding = sharding, Offload = offload, TensorParallel = tensorParallel, SequenceParallel = sequenceParallel,
                ExpertParallel = expertParallel };
            try { layouts.Add(layout.Validate()); }
            catch (InputError) { /* not runnable with this GPU/node shape: not a candidate */ }
        }
        return layouts;
    }

    /// <summary>
    /// The least-communication layout that fits <paramref name="gpuCapacityBytes"/> (and the node's CPU RAM), with ranked
    /// alternatives. When no layout can use all <paramref name="gpus"/> GPUs, the job may still run on fewer of them: more
    /// ranks can need more CPU RAM per node (one offloaded copy per rank; FSDP1 pins buffers rounded up to powers of two,
    /// so 3 ranks pin more than 2). Then the chosen layout is the one on the most GPUs below that fits, ranked first, and
    /// <see cref="LayoutSearchResult.UsesFewerGpus"/> says so; a job that runs on N GPUs thus never stops fitting on N + 1.
    /// </summary>
    public static LayoutSearchResult LeastCommunication(ParallelJob job, int gpus, int nodes, long gpuCapacityBytes, long? cpuBytesPerNode,
        EngineFamily family = EngineFamily.DeepSpeed, int tensorParallel = 1, bool sequenceParallel = false, int expertParallel = 1)
    {
        var all = OnAllGpus(job, gpus, nodes, gpuCapacityBytes, cpuBytesPerNode, family, tensorParallel, sequenceParallel, expertParallel);
        if (all.Chosen is not null) return all;
        for (int fewer = gpus - 1; fewer >= 1; fewer--)
        {
            if (fewer % nodes != 0 || fewer % tensorParallel != 0) continue;
            var subset = OnAllGpus(job, fewer, nodes, gpuCapacityBytes, cpuBytesPerNode, family, tensorParallel, sequenceParallel, expertParallel);
            if (subset.Chosen is not null)
                return all with { Chosen = subset.Chosen, Ranked = [subset.Chosen, .. all.Ranked] };
        }
        return all;
    }

    /// <summary>The search over layouts that use every one of <paramref name="gpus"/> GPUs.</summary>
    private static LayoutSearchResult OnAllGpus(ParallelJob job, int gpus, int nodes, long gpuCapacityBytes, long? cpuBytesPerNode,
        EngineFamily family, int tensorParallel, bool sequenceParallel, int expertParallel)
    {
        var options = Candidates(gpus, nodes, family, tensorParallel, sequenceParallel, expertParallel)
            .Select(l => ParallelMemory.Plan(job, l))
            .Select(l => new LayoutOption(l.Layout, l, l.FitsGpu(gpuCapacityBytes), l.FitsCpu(cpuBytesPerNode)))
            .ToList();
        var ranked = options.Where(o => o.Fits).Concat(options.Where(o => !o.Fits).OrderBy(o => o.Ledger.GpuPeakBytes)).ToList();
        return new LayoutSearchResult(gpus, nodes, options.FirstOrDefault(o => o.Fits), ranked);
    }

    /// <summary>GPU counts tried: powers of two that divide a node, a full node, then whole nodes; each a multiple of the TP degree.</summary>
    public static IEnumerable<(int Gpus, int Nodes)> GpuCounts(int gpusPerNode, int maxGpus, int tensorParallel = 1)
    {
        if (gpusPerNode < 1)
            throw new InputError(LayoutParameters.GpusPerNode, $"{gpusPerNode} GPUs per node", $"Give {LayoutParameters.GpusPerNode} 1 or more.");
        var counts = new List<(int, int)>();
        for (int n = 1; n < gpusPerNode && n <= maxGpus; n *= 2)
            if (gpusPerNode % n == 0) counts.Add((n, 1));
        for (int nodes = 1; nodes * gpusPerNode <= maxGpus; nodes++)
            counts.Add((nodes * gpusPerNode, nodes));
        return counts.Where(c => c.Item1 % tensorParallel == 0 && (c.Item1 / c.Item2) % tensorParallel == 0);
    }

    /// <summary>The smallest GPU count (of one type) for which some layout fits; null when none up to <paramref name="maxGpus"/> does.</summary>
    public static LayoutSearchResult? SmallestGpuCount(ParallelJob job, long gpuCapacityBytes, long? cpuBytesPerNode, int gpusPerNode = 8,
        int maxGpus = 1024, EngineFamily family = EngineFamily.DeepSpeed, int tensorParallel = 1, bool sequenceParallel = false, int expertParallel = 1) =>
        GpuCountSearch(job, gpuCapacityBytes, cpuBytesPerNode, gpusPerNode, maxGpus, family, tensorParallel, sequenceParallel, expertParallel) is { Chosen: not null } found
            ? found : null;

    /// <summary>The counts tried from the smallest up: the first whose search chooses a layout, or, when none does, the
    /// search on the largest count (none chosen, every candidate ranked by peak: its lowest is the floor more GPUs do not
    /// lower).</summary>
    public static LayoutSearchResult GpuCountSearch(ParallelJob job, long gpuCapacityBytes, long? cpuBytesPerNode, int gpusPerNode = 8,
        int maxGpus = 1024, EngineFamily family = EngineFamily.DeepSpeed, int tensorParallel = 1, bool sequenceParallel = false, int expertParallel = 1)
    {
        LayoutSearchResult? last = null;
        foreach (var (gpus, nodes) in GpuCounts(gpusPerNode, maxGpus, tensorParallel))
        {
            last = OnAllGpus(job, gpus, nodes, gpuCapacityBytes, cpuBytesPerNode, family, tensorParallel, sequenceParallel, expertParallel);
            if (last.Chosen is not null) return last;
        }
        return last ?? throw new InputError(LayoutParameters.GpusPerNode, $"no GPU count up to {maxGpus} is a multiple of the tensor-parallel degree {tensorParallel}",
            $"Give {LayoutParameters.GpusPerNode} a multiple of {tensorParallel}.");
    }
}
