namespace Afinado.Planner.Parallel;

/// <summary>Per-GPU and per-node memory of one job under one layout, every line with its formula and source.</summary>
public sealed record ParallelLedger
{
    public required ParallelLayout Layout { get; init; }
    public required IReadOnlyList<MemoryLine> Gpu { get; init; }
    public required IReadOnlyList<MemoryLine> CpuPerNode { get; init; }
    public required DeepSpeedSettings DeepSpeed { get; init; }

    /// <summary>Bytes of the lines live at <paramref name="moment"/>.</summary>
    public static long At(IEnumerable<MemoryLine> lines, StepPhase moment) => lines.Where(l => (l.Phase & moment) != 0).Sum(l => l.Bytes);

    /// <summary>Bytes live at the worst moment of a step.</summary>
    public long GpuPeakBytes => StepPhases.Moments.Max(m => At(Gpu, m));

    /// <summary>The moment that holds the peak (the earliest of equal ones).</summary>
    public StepPhase GpuPeakPhase => StepPhases.Moments.MaxBy(m => At(Gpu, m));

    /// <summary>CPU RAM a node needs: the larger of checkpoint loading and what offload keeps there during training.</summary>
    public long CpuBytesPerNode => Math.Max(At(CpuPerNode, StepPhase.ModelLoad), CpuPerNode.Where(l => l.Phase != StepPhase.ModelLoad).Sum(l => l.Bytes));

    public bool FitsGpu(long capacityBytes) => GpuPeakBytes <= capacityBytes;

    /// <summary>True when no CPU limit is given, or the node's RAM holds what the plan puts there.</summary>
    public bool FitsCpu(long? cpuBytesPerNode) => cpuBytesPerNode is null || CpuBytesPerNode <= cpuBytesPerNode;
}
