using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// What a user asked of the layout: the layout as given (validated against the model by the planner), whether a sharding
/// was named (otherwise the search may choose one) and whether it is FSDP (the search then stays within FSDP), the CPU RAM
/// per node, and the GPUs per node of a <c>--fewest-gpus</c> search.
/// </summary>
public sealed record LayoutRequest(ParallelLayout Layout, bool ShardingGiven, bool WantsFsdp, long? CpuBytesPerNode, bool SearchFewestGpus = false,
    int GpusPerNodeForSearch = 8);

/// <summary>One device's multi-GPU verdict: the layout planned (given, or the least-communication one that fits) and its ledger.</summary>
public sealed record ParallelVerdict(Device Device, ParallelLedger Ledger, bool Fits, IReadOnlyList<LayoutOption> Alternatives, int RequestedGpus,
    long? CpuLimitBytesPerNode = null)
{
    /// <summary>The search found no layout on all the GPUs given, and chose one on fewer of them.</summary>
    public bool UsesFewerGpus => Fits && Ledger.Layout.Gpus < RequestedGpus;

    public bool FitsGpuMemory => Device.CapacityBytes <= 0 || Ledger.FitsGpu(Device.CapacityBytes);

    public bool FitsCpuMemory => Ledger.FitsCpu(CpuLimitBytesPerNode);

    /// <summary>Why no layout of this GPU runs the job whatever its memory (a kernel its compute capability lacks,
    /// <see cref="DeviceSupport.Unsupported"/>); then <see cref="Fits"/> is false.</summary>
    public InputText? Unsupported { get; init; }

    /// <summary>This GPU cannot compute the stored weights and transformers dequantizes them when the model loads
    /// (<see cref="DeviceSupport.For"/>): the ledger is that 16-bit load's; null otherwise.</summary>
    public Dequantization? Dequantized { get; init; }

    /// <summary>Why this GPU runs the step's SDPA with the math kernel (<see cref="DeviceSupport.SdpaMath"/>): the ledger's
    /// activations hold its scores; null otherwise.</summary>
    public string? SdpaMath { get; init; }
}

/// <summary>A single-GPU plan made per GPU of a layout: a verdict per device and, when asked, the fewest GPUs that run it.</summary>
public sealed record MultiGpuPlan(Plan Plan, IReadOnlyList<ParallelVerdict> Verdicts, LayoutSearchResult? Fewest)
{
    public bool FitsAny => Verdicts.Any(v => v.Fits);

    /// <summary>A <c>--fewest-gpus</c> search that found no count: the largest count it tried (<see cref="FewestGpuLimit"/>),
    /// every layout ranked by per-GPU peak. Its lowest peak is what more GPUs do not shard (the micro-batch's activations,
    /// the gathered layers, the runtime).</summary>
    public LayoutSearchResult? FewestNotFound { get; init; }
}

/// <summary>
/// The multi-GPU part of <c>plan</c>, <c>export</c> and the page: turns the single-GPU plan into per-GPU ledgers for the
/// layout the request gives (ParallelMemory), or for the least-communication layout that fits each device (ParallelSearch).
/// </summary>
public static class MultiGpuPlanner
{
    public static MultiGpuPlan Create(Plan plan, LayoutRequest request, IReadOnlyList<Device> devices, EngineFamily family)
    {
        var verdicts = Verdicts(plan, request, devices, family);
        // No count of a GPU that cannot run the job's kernels runs it: nothing to search.
        var search = request.SearchFewestGpus && verdicts[0].Unsupported is null ? GpuCountSearch(plan, request, verdicts[0].Device, family) : null;
        return new MultiGpuPlan(plan, verdicts, search is { Chosen: not null } ? search : null)
        {
            FewestNotFound = search is { Chosen: null } ? search : null,
        };
    }

    /// <summary>The most GPUs a <c>--fewest-gpus</c> search tries.</summary>
    public const int FewestGpuLimit = 1024;

    public static IReadOnlyList<ParallelVerdict> Verdicts(Plan plan, LayoutRequest request, IReadOnlyList<Device> devices, EngineFamily family)
    {
        var planned = PlanBridge.FromPlan(plan);
        var layout = request.Layout.Validate(plan.Architecture);
        long? cpu = request.CpuBytesPerNode;
        var result = new List<ParallelVerdict>();
        foreach (var d in devices.Where(d => !d.IsCpu))
        {
            var unsupported = DeviceSupport.Unsupported(plan.Architecture, plan.Job, d);
            var job = JobOn(plan, d, planned);
            var (dequantized, sdpaMath) = (DeviceSupport.For(plan.Job, d), DeviceSupport.SdpaMath(plan.Architecture, plan.Job, d));
            if (request.ShardingGiven || layout.Offload != Offload.None)
            {
                var ledger = ParallelMemory.Plan(job, layout);
                result.Add(new(d, ledger, unsupported is null && (d.CapacityBytes <= 0 || ledger.FitsGpu(d.CapacityBytes)) && ledger.FitsCpu(cpu), [], layout.Gpus, cpu)
                    { Unsupported = unsupported, Dequantized = dequantized, SdpaMath = sdpaMath });
            }
            else
            {
                var search = ParallelSearch.LeastCommunication(job, layout.Gpus, layout.Nodes, d.CapacityBytes, cpu,
                    request.WantsFsdp ? EngineFamily.Fsdp : family, layout.TensorParallel, layout.SequenceParallel, layout.ExpertParallel);
                result.Add(new(d, (search.Chosen ?? search.Ranked[0]).Ledger, unsupported is null && search.Chosen is not null, search.Ranked, layout.Gpus, cpu)
                    { Unsupported = unsupported, Dequantized = dequantized, SdpaMath = sdpaMath });
            }
        }
        if (result.Count == 0)
            throw new InputError(PlanParameters.Gpu, "multi-GPU layouts need a GPU", $"Give {PlanParameters.Gpu} NAME or {PlanParameters.GpuMemory} SIZE.");
        return result;
    }

    /// <summary>The smallest GPU count of <paramref name="device"/>'s type that runs the job (null when none up to <see cref="FewestGpuLimit"/>).</summary>
    public static LayoutSearchResult? FewestGpus(Plan plan, LayoutRequest request, Device device, EngineFamily family) =>
        GpuCountSearch(plan, request, device, family) is { Chosen: not null } found ? found : null;

    private static LayoutSearchResult GpuCountSearch(Plan plan, LayoutRequest request, Device device, EngineFamily family) =>
        ParallelSearch.GpuCountSearch(JobOn(plan, device, PlanBridge.FromPlan(plan)), device.CapacityBytes, request.CpuBytesPerNode, request.GpusPerNodeForSearch,
            FewestGpuLimit, request.WantsFsdp ? EngineFamily.Fsdp : family, request.Layout.TensorParallel, request.Layout.SequenceParallel,
            request.Layout.ExpertParallel);

    /// <summary>The multi-GPU job as <paramref name="device"/> runs it (<see cref="DeviceSupport.OnDevice"/>): where the GPU
    /// dequantizes the stored weights or runs SDPA's math kernel, the plan's ledger is built again for that job before it is
    /// bridged, so the per-GPU states and activations are what that GPU holds (FP8 DeepSeek-V3 on A100s is a bf16 model).</summary>
    private static ParallelJob JobOn(Plan plan, Device device, ParallelJob planned)
    {
        var onDevice = DeviceSupport.OnDevice(plan.Architecture, plan.Job, device);
        if (ReferenceEquals(onDevice, plan.Job)) return planned;
        var ledger = LedgerBuilder.Build(ModelProfile.Create(plan.Selection), onDevice, plan.DeviceKind);
        return PlanBridge.FromPlan(plan with { Job = onDevice, Ledger = ledger });
    }
}
