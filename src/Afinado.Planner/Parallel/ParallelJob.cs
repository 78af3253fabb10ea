using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// What the multi-GPU ledger needs from a single-GPU plan: its model-state entries (one unsharded replica), its
/// activation entries for one micro-batch (tagged with their TP split), its runtime overheads, and how big the units
/// are that sharded engines gather. Built by the single-GPU planner (or by tests from first principles).
/// </summary>
public sealed record ParallelJob
{
    public required long Parameters { get; init; }
    public required long TrainableParameters { get; init; }
    public required IReadOnlyList<ModelStateEntry> ModelStates { get; init; }
    public IReadOnlyList<ActivationEntry> Activations { get; init; } = [];
    /// <summary>Per-GPU lines that do not scale with parallelism (CUDA context, allocator reserve). Always live.</summary>
    public IReadOnlyList<LedgerEntry> Overheads { get; init; } = [];
    /// <summary>Caching-allocator slack added on top of the per-GPU peak, as a fraction of it (0 = none).</summary>
    public double AllocatorReserveFraction { get; init; }
    /// <summary>Fragmentation of the single-GPU caching-allocator replay of the same step (null: not replayed). A plain
    /// data-parallel rank runs exactly that step, plus DDP's gradient buckets.</summary>
    public long? ReplayedFragmentationBytes { get; init; }

    /// <summary>Bytes of one parameter when gathered for compute (2 for bf16; ~0.5 for an NF4 base in bf16 quant storage).</summary>
    public double GatherBytesPerParameter { get; init; } = 2;
    /// <summary>Bytes of one gradient element as the engine reduces it (2 under bf16/fp16 training).</summary>
    public double GradientBytesPerParameter { get; init; } = 2;
    /// <summary>DeepSpeed casts 16-bit gradient partitions to fp32 for the optimizer step (memory.rst: "18 = … 4 grads_32bit …").</summary>
    public bool SixteenBitTraining { get; init; } = true;
    /// <summary>Bytes per parameter of the checkpoint as it is loaded into CPU RAM.</summary>
    public double LoadBytesPerParameter { get; init; } = 2;

    public long LargestModuleParameters { get; init; }
    public long LargestModuleTrainable { get; init; }
    public long LargestWrapUnitParameters { get; init; }
    public long LargestWrapUnitTrainable { get; init; }
    /// <summary>Trainable elements of the largest decoder layer alone (the root unit left out).</summary>
    public long LargestLayerTrainable { get; init; }
    /// <summary>
    /// Bytes of those units when gathered, when they differ from elements × <see cref="GatherBytesPerParameter"/>
    /// (a QLoRA layer is NF4 while the root's embeddings and head stay 16-bit). 0 = use the average.
    /// </summary>
    public double LargestModuleGatherBytes { get; init; }
    public double LargestWrapUnitGatherBytes { get; init; }
    /// <summary>FSDP root unit (embeddings, final norm, untied head): gathered for the whole forward and backward.</summary>
    public double RootUnitGatherBytes { get; init; }
    /// <summary>
    /// Bytes of every FSDP1 flat parameter (one per wrap unit) as accelerate's TRANSFORMER_BASED_WRAP plus PEFT's
    /// <c>fsdp_auto_wrap_policy</c> build them: each decoder layer's own tensors, each LoRA factor module, and the root
    /// (embeddings, final norm, head). Empty = not known (the CPU offload ledger then falls back to the state classes).
    /// </summary>
    public IReadOnlyList<double> FsdpUnitBytes { get; init; } = [];
    /// <summary>Adapter factors are FSDP units of their own, nested in their decoder layer's unit (PEFT's
    /// <c>fsdp_auto_wrap_policy</c>); this changes what FSDP1 prefetches in backward.</summary>
    public bool AdapterUnitsNested { get; init; }
    /// <summary>Gathered bytes and trainable elements of the token embedding and of the untied head (parts of the root unit),
    /// for layouts that shard them as their own units (torchtune <c>custom_sharded_layers</c>).</summary>
    public double EmbeddingGatherBytes { get; init; }
    public double HeadGatherBytes { get; init; }
    public long EmbeddingTrainable { get; init; }
    public long HeadTrainable { get; init; }
    public long HiddenSize { get; init; }
    /// <summary>Sizes of the parameter tensors (to count those ZeRO-3 keeps whole under its persistence threshold).</summary>
    public IReadOnlyList<long> TensorSizes { get; init; } = [];
    public double TensorParallelShardableFraction { get; init; } = 1;
    /// <summary>Bytes of one micro-batch's routed token rows in the compute dtype (tokens × experts per token × hidden):
    /// the size of one all-to-all buffer of an MoE layer under expert parallelism (0 for a dense model).</summary>
    public long ExpertDispatchBytes { get; init; }
    /// <summary>Image inputs: the vision tower runs before the first decoder layer, a moment of its own
    /// (<see cref="Phase.VisionTower"/>) at which the model states, the engine's whole-forward buffers and the tower's own
    /// activations are live but no decoder activation yet.</summary>
    public bool VisionTowerRuns { get; init; }

    /// <summary>Fills the gathering granularity and TP fraction from the architecture; trainable units are given by the caller.</summary>
    public static ParallelJob FromArchitecture(ModelArchitecture model, long trainable, IReadOnlyList<ModelStateEntry> states,
        IReadOnlyList<ActivationEntry> activations, IReadOnlyList<LedgerEntry> overheads, bool fullFinetune) => new()
    {
        Parameters = model.ParameterCount,
        TrainableParameters = trainable,
        ModelStates = states,
        Activations = activations,
        Overheads = overheads,
        LargestModuleParameters = ModelGranularity.LargestModule(model),
        LargestModuleTrainable = fullFinetune ? ModelGranularity.LargestModule(model) : 0,
        LargestWrapUnitParameters = ModelGranularity.LargestLayerUnit(model),
        RootUnitGatherBytes = ModelGranularity.RootUnit(model) * 2.0,
        LargestWrapUnitTrainable = fullFinetune ? ModelGranularity.LargestLayerUnit(model) : 0,
        LargestLayerTrainable = fullFinetune ? ModelGranularity.LargestLayerUnit(model) : 0,
        HiddenSize = model.HiddenSize,
        TensorSizes = model.Tensors.Select(t => t.Elements).ToList(),
        TensorParallelShardableFraction = ModelGranularity.TensorParallelShardableFraction(model),
    };
}
