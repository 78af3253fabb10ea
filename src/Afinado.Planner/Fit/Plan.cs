using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Fit;

/// <summary>Fits or OOM on one device, with headroom (capacity − total; negative when the total exceeds it).</summary>
public sealed record DeviceVerdict(Device Device, bool Fits, long HeadroomBytes)
{
    /// <summary>The margin is inside the planner's measured error band (<see cref="FitCheck.BorderlineFraction"/>), or the
    /// job fits only after the allocator releases its cache: do not trust a plain "fits".</summary>
    public bool Borderline { get; init; }
    /// <summary>The total exceeds the capacity, yet the replay with the capacity as a limit finishes after cache releases.</summary>
    public bool FitsAfterCacheRelease { get; init; }
    public int CacheReleases { get; init; }
    /// <summary>With <see cref="FitsAfterCacheRelease"/>: the reserved peak of the replay limited to this device. The
    /// allocator frees its cached segments and retries instead of growing past the device, so on it the process holds this,
    /// not the unlimited reserved figure; null otherwise.</summary>
    public long? ReservedAfterReleaseBytes { get; init; }
    /// <summary><see cref="ReservedAfterReleaseBytes"/> plus the runtime outside the allocator: what nvidia-smi would show on
    /// this device; null unless the job fits only after cache releases.</summary>
    public long? TotalAfterReleaseBytes { get; init; }
    /// <summary>The GPU cannot compute the job's stored weight format, so transformers dequantizes it on load: the verdict and
    /// headroom are those of the dequantized job; null when it loads as planned.</summary>
    public Dequantization? Dequantized { get; init; }
    /// <summary>Why the step's SDPA runs its math kernel on this GPU (below compute capability 8.0) and would not on a
    /// newer one (<see cref="DeviceSupport.SdpaMath"/>); the verdict then judges that step; null otherwise.</summary>
    public string? SdpaMath { get; init; }
    /// <summary>The total of the job as this GPU runs it, when it differs from the plan's (<see cref="Dequantized"/>,
    /// <see cref="SdpaMath"/>); null otherwise.</summary>
    public long? TotalOnDeviceBytes { get; init; }
    /// <summary>Why the job cannot run on this GPU whatever its memory (a kernel its compute capability lacks); then
    /// <see cref="Fits"/> is false and the headroom is the memory's alone.</summary>
    public InputText? Unsupported { get; init; }
    /// <summary>Advice about running the job on this GPU that changes no byte (<see cref="DeviceSupport.Advice"/>), or null.</summary>
    public InputText? Advice { get; init; }
}

/// <summary>A change to the job (its parameters and their new values), with the plan it gives.</summary>
public sealed record FitFix(ParameterChange Change, Job Job, long PeakBytes, long TotalBytes, bool Fits)
{
    /// <summary>When the changed job fits only after the allocator frees its cache (its total is above the capacity): what
    /// the device then holds (<see cref="DeviceVerdict.TotalAfterReleaseBytes"/>); null otherwise.</summary>
    public long? TotalAfterReleaseBytes { get; init; }
}

/// <summary>The largest value of a parameter that fits the first device (0 when even 1 does not; then
/// <see cref="Unlock"/> names the change that makes 1 fit, when one does).</summary>
public sealed record SearchResult(string Parameter, int Value, ParameterChange? Unlock = null)
{
    /// <summary>For a bitsandbytes QLoRA job without <c>kbit_prep</c>: the same search after prepare_model_for_kbit_training.</summary>
    public int? ValueWithKbitPrep { get; init; }
}

/// <summary>Everything <c>afinado plan</c> reports: the ledger, verdicts, fixes, an optional search and an optional curve.</summary>
public sealed record Plan(
    ModelArchitecture Architecture,
    Job Job,
    TrainableSelection Selection,
    DeviceKind DeviceKind,
    MemoryLedger Ledger,
    IReadOnlyList<DeviceVerdict> Verdicts,
    IReadOnlyList<FitFix> Fixes,
    SearchResult? Search)
{
    public const string Schema = "afinado.plan/1";

    /// <summary>For a bitsandbytes QLoRA plan without <c>kbit_prep</c>: the total the same job has after PEFT's
    /// prepare_model_for_kbit_training, which TRL's SFTTrainer and PEFT's QLoRA recipe run on a 4-bit model.</summary>
    public long? KbitPrepTotalBytes { get; init; }

    /// <summary>Why the plan runs another attention kernel than the job asked for (gpt_oss has no SDPA path), or null.</summary>
    public string? AttentionFallback { get; init; }

    /// <summary>For a 16-bit inference plan of a model whose config names float32 (or no dtype): how transformers ≥ 5 would
    /// load it by default (<c>dtype="auto"</c>), which this plan does not assume; null otherwise.</summary>
    public InputText? DefaultLoadNote { get; init; }

    /// <summary>For inference that fits no single GPU (the first device): the fewest GPUs of that kind its weights and KV cache
    /// alone need (<see cref="Fit.InferenceGpuFloor"/>); null otherwise.</summary>
    public InferenceGpuFloor? InferenceGpuFloor { get; init; }

    /// <summary>For an inference plan whose KV cache is not in the compute dtype: what that cache is and what transformers
    /// would hold instead (<see cref="KvDtypeNote"/>); null otherwise.</summary>
    public InputText? KvDtypeNote { get; init; }

    /// <summary>With <see cref="DefaultLoadNote"/> for a float32 config: the total of the same job loaded as transformers
    /// loads it by default (fp32 weights, compute and KV cache).</summary>
    public long? DefaultLoadTotalBytes { get; init; }

    /// <summary>What the weights are stored as, for the table and <c>job.weights_dtype</c>: "stored" for a checkpoint read
    /// from its headers and planned as it is, else the job's format (<see cref="Job.WeightsName"/>: a dtype, or a
    /// checkpoint's own format such as gptq-int4).</summary>
    public string WeightsName => !Job.IsTraining && Job.WeightsDtype is null && Architecture.StoredWeightBytes is not null ? "stored" : Job.WeightsName;

    /// <summary>Memory against sequence length or batch (<c>curve</c>); null when not asked for.</summary>
    public MemoryCurve? Curve { get; init; }

    /// <summary>True when at least one device fits (or none was given).</summary>
    public bool FitsAny => Verdicts.Count == 0 || Verdicts.Any(v => v.Fits);
}
