namespace Afinado.Planner.Memory;

/// <summary>
/// The parameters of a <see cref="Job"/>, each named as the snake_case of its property (LoRA's by <see cref="Selection.LoraConfig"/>'s,
/// prefixed <c>lora_</c>): what the planner's errors and fixes name; front ends render them their own way.
/// </summary>
public static class JobParameters
{
    public static readonly InputParameter Task = new("task");
    public static readonly InputParameter Method = new("method");
    public static readonly InputParameter FreezePatterns = new("freeze_patterns");
    public static readonly InputParameter LoraRank = new("lora_rank");
    public static readonly InputParameter LoraAlpha = new("lora_alpha");
    public static readonly InputParameter LoraDropout = new("lora_dropout");
    public static readonly InputParameter LoraTargets = new("lora_targets");
    public static readonly InputParameter LoraTargetParameters = new("lora_target_parameters");
    public static readonly InputParameter Precision = new("precision");
    public static readonly InputParameter Optimizer = new("optimizer");
    public static readonly InputParameter Rule = new("rule");
    public static readonly InputParameter GuidedEsSubspace = new("guided_es_subspace");
    public static readonly InputParameter Batch = new("batch");
    public static readonly InputParameter Seq = new("seq");
    public static readonly InputParameter Context = new("context");
    public static readonly InputParameter Images = new("images");
    public static readonly InputParameter ImageSize = new("image_size");
    public static readonly InputParameter VisionTower = new("vision_tower");
    public static readonly InputParameter Checkpointing = new("checkpointing");
    public static readonly InputParameter AllocConf = new("alloc_conf");
    public static readonly InputParameter Stack = new("stack");
    public static readonly InputParameter Attention = new("attention");
    public static readonly InputParameter Dropout = new("dropout");
    public static readonly InputParameter WeightsDtype = new("weights_dtype");
    public static readonly InputParameter AdapterDtype = new("adapter_dtype");
    public static readonly InputParameter KvDtype = new("kv_dtype");
    public static readonly InputParameter KbitPrep = new("kbit_prep");
    public static readonly InputParameter KvCache = new("kv_cache");
    public static readonly InputParameter Experts = new("experts");
    public static readonly InputParameter GradAccumulation = new("grad_accumulation");
    public static readonly InputParameter OptimizerInBackward = new("optimizer_in_backward");
    public static readonly InputParameter OffloadActivations = new("offload_activations");
    public static readonly InputParameter LossChunks = new("loss_chunks");
    public static readonly InputParameter LegacyLoss = new("legacy_loss");
    public static readonly InputParameter KeepOutput = new("keep_output");
    public static readonly InputParameter QuantLibrary = new("quant_library");
    public static readonly InputParameter Compile = new("compile");
    public static readonly InputParameter FusedOptimizer = new("fused_optimizer");
}
