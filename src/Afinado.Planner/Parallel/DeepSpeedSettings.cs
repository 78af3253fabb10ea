namespace Afinado.Planner.Parallel;

/// <summary>
/// The ZeRO communication/gathering knobs, as concrete numbers. The ledger sizes its buffers from these and the
/// DeepSpeed exporter writes exactly these, so the plan and the config cannot disagree.
/// Defaults: DeepSpeed config-json.md (ecosystem.md §6.1); for stage 3 the values Hugging Face's Trainer substitutes
/// for "auto" (transformers integrations/deepspeed.py: reduce_bucket_size = h², stage3_prefetch_bucket_size = 0.9·h²,
/// stage3_param_persistence_threshold = 10·h), since that is what most finetuning runs actually use.
/// </summary>
public sealed record DeepSpeedSettings
{
    public long ReduceBucketSize { get; init; } = 500_000_000;
    public long AllgatherBucketSize { get; init; } = 500_000_000;
    /// <summary>DeepSpeed's default: false for stages 1-2, true for stage 3.</summary>
    public bool OverlapComm { get; init; }
    public bool ContiguousGradients { get; init; } = true;
    public long Stage3PrefetchBucketSize { get; init; } = 500_000_000;
    public long Stage3MaxLiveParameters { get; init; } = 1_000_000_000;
    public long Stage3MaxReuseDistance { get; init; } = 1_000_000_000;
    public long Stage3ParamPersistenceThreshold { get; init; } = 100_000;
    public long SubGroupSize { get; init; } = 1_000_000_000;

    /// <summary>
    /// Settings for a model of hidden size <paramref name="hidden"/> at <paramref name="stage"/>. When fewer parameters
    /// train than a bucket holds (LoRA), the gradient buckets shrink to the trainable count: DeepSpeed allocates the
    /// whole bucket up front, and the exported config carries the smaller number so the run matches the plan.
    /// </summary>
    public static DeepSpeedSettings For(int stage, long hidden, long trainable = long.MaxValue)
    {
        long Cap(long bucket) => Math.Max(1, Math.Min(bucket, trainable));
        var defaults = new DeepSpeedSettings();
        return stage == 3
            ? new DeepSpeedSettings
            {
                OverlapComm = true,
                ReduceBucketSize = Cap(hidden * hidden),
                Stage3PrefetchBucketSize = (long)(0.9 * hidden * hidden),
                Stage3ParamPersistenceThreshold = 10 * hidden,
            }
            : defaults with { ReduceBucketSize = Cap(defaults.ReduceBucketSize), AllgatherBucketSize = Cap(defaults.AllgatherBucketSize) };
    }
}
