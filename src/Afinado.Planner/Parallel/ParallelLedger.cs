namespace Afinado.Planner.Parallel;

/// <summary>Per-GPU and per-node memory of one job under one layout, every line with its formula and source.</summary>
public sealed record ParallelLedger
{
    public required ParallelLayout Layout { get; init; }
    public required IReadOnlyList<MemoryLine> Gpu { get; init; }
    public required IReadOnlyList<MemoryLine> CpuPerNode { get; init; }
    public required DeepSpeedSettings DeepSpeed { get; init; }

    private long Sum(IEnumerable<MemoryLine> lines, StepPhase phase) => lines.Where(l => l.Phase == phase).Sum(l => l.Bytes);

    /// <summary>Bytes live at the worst moment of a step: everything always live plus the larger transient phase.</summary>
    public long GpuPeakBytes => Sum(Gpu, StepPhase.Always) + Math.Max(Sum(Gpu, StepPhase.Backward), Sum(Gpu, StepPhase.OptimizerStep));

    public StepPhase GpuPeakPhase => Sum(Gpu, StepPhase.OptimizerStep) > Sum(Gpu, StepPhase.Backward) ? StepPhase.OptimizerStep : StepPhase.Backward;

    /// <summary>CPU RAM a node needs: the larger of checkpoint loading and what offload keeps there during training.</summary>
    public long CpuBytesPerNode => Math.Max(Sum(CpuPerNode, StepPhase.ModelLoad), CpuPerNode.Where(l => l.Phase != StepPhase.ModelLoad).Sum(l => l.Bytes));

    public bool FitsGpu(long capacityBytes) => GpuPeakBytes <= capacityBytes;

    /// <summary>True when no CPU limit is given, or the node's RAM holds what the plan puts there.</summary>
    public bool FitsCpu(long? cpuBytesPerNode) => cpuBytesPerNode is null || CpuBytesPerNode <= cpuBytesPerNode;
}
