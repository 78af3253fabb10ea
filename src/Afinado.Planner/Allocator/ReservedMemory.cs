using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// What the GPU really holds for a job: the step's allocation events (<see cref="StepTraces"/>) replayed through the
/// caching allocator (<see cref="CachingAllocator"/>), plus the runtime outside it (<see cref="RuntimeStack"/>).
/// </summary>
public static class ReservedMemory
{
    /// <summary>
    /// Why a GPU job's step is not replayed (null: it is). The traces follow transformers' dense decoder, the backprop
    /// loop of bench/gpu/measure.py and the ES step of bench/gpu/measure_rules.py; jobs whose step allocates differently
    /// (DFA's and guided ES's injected errors, among others) get the assumed reserve instead.
    /// </summary>
    public static string? NotReplayed(ModelProfile profile, Job job)
    {
        var a = profile.Architecture;
        if (a.Support == ModelSupport.Generic) return "a decoder read from its checkpoint's headers is not traced";
        if (a.IsMoE && MoeNotTraced(profile, job) is { } moe) return moe;
        if (a.CrossAttentionLayers > 0) return "cross-attention layers are not traced";
        if (job.Images > 0) return "image inputs (the vision tower's step) are not traced";
        if (!job.IsTraining) return null;
        return job.Rule is not (LearningRule.Backprop or LearningRule.Es or LearningRule.EsDirect) ? $"the {job.Rule.Name()} rule's step is not traced"
            : job.Compile ? "compiled (fused) steps are not traced"
            : job.OffloadActivations ? "activation offloading is not traced"
            : null;
    }

    /// <summary>Why a sparse model's blocks are not traced (null: they are, <c>DecoderTrace.Moe.cs</c>,
    /// <c>DecoderTrace.Phimoe.cs</c>, <c>DecoderTrace.Deepseek.cs</c>, <c>DecoderTrace.Llama4.cs</c>): Mixtral's, Qwen2/3
    /// MoE's, PhiMoE's and DeepSeek-V2/V3's blocks through grouped_mm or the eager loop, gpt-oss's bf16 stacks through
    /// grouped_mm, Llama 4's bmm over every expert, with PEFT target_parameters on the stacks (not under the eager loop).</summary>
    private static string? MoeNotTraced(ModelProfile profile, Job job)
    {
        var a = profile.Architecture;
        bool gptOss = a.MoeLoop == MoeTrainingLoop.GptOss, llama4 = a.MoeLoop == MoeTrainingLoop.Llama4;
        // gpt_oss's and Llama 4's checkpoints store the stacks themselves; the others' per-expert linears are stacked at load.
        if (a.MoeLoop is not (MoeTrainingLoop.TopKExperts or MoeTrainingLoop.Phimoe or MoeTrainingLoop.DeepseekV3) && !gptOss && !llama4
            || (a.MoeRunsEveryExpert && !llama4) || !(a.RoutedExpertsAreParameters || gptOss || llama4))
            return $"{a.ModelType}'s mixture-of-experts blocks are not traced";
        // Llama 4 runs every expert through torch.bmm: no experts backend.
        if (llama4) return job.StoredFormat is not null ? "a quantized checkpoint's experts are not traced" : null;
        if (gptOss && job.ResolvedExperts != ExpertsBackend.GroupedMm) return "gpt_oss's eager experts loop is not traced (the grouped_mm experts backend is)";
        // transformers runs MXFP4 stacks through its Triton MoE kernels, not grouped_mm.
        if (job.ResolvedWeightsDtype == DType.Mxfp4) return "MXFP4 experts (Triton MoE kernels) are not traced";
        // PEFT's ParamWrapper merges W + ΔW when the stack is read, and the eager loop reads it once per expert: how often
        // that stack-sized sum is rebuilt and kept depends on PEFT's parametrization caching, which is not traced.
        if (job.ResolvedExperts != ExpertsBackend.GroupedMm && job.IsTraining && profile.Layers.Any(l => l.ExpertStackLoraElements > 0))
            return "target_parameters on the stacks under the eager experts loop is not traced (the grouped_mm experts backend is)";
        if (job.StoredFormat is not null) return "a quantized checkpoint's experts are not traced";
        // Routed experts are parameters here, so PEFT reaches them only through target_parameters (ParamWrapper), which the
        // trace follows; adapters on per-expert linears would belong to the eager loop's world.
        if (profile.Layers.Any(l => (l.ExpertsLora || l.ExpertDownLora) && l.ExpertStackLoraElements == 0)) return "LoRA on per-expert linears is not traced";
        return null;
    }

    // Replays of one selection, by job and capacity: searches ask for the same trace many times. (Batch b × sequence s
    // and batch 1 × b·s were once one key for fused attention; the model forward's rotary tables and cache_position
    // follow the sequence alone, so the two traces differ and each is replayed.)
    private static readonly ConditionalWeakTable<ModelProfile, ConcurrentDictionary<(Job, long?), ReplayResult>> Cache = new();
    private const int MaxCachedPerProfile = 4096;

    /// <summary>Replays the job (its stack's workspaces first, under its allocator settings); with
    /// <paramref name="capacityBytes"/> the allocator may reserve at most that much.</summary>
    public static ReplayResult Replay(ModelProfile profile, Job job, long? capacityBytes = null)
    {
        var key = (job, capacityBytes);
        var cache = Cache.GetValue(profile, _ => new());
        if (cache.TryGetValue(key, out var hit)) return hit;
        var result = AllocatorReplay.Run(StepTraces.ForReplay(profile, job), job.AllocConf, capacityBytes);
        if (cache.Count >= MaxCachedPerProfile) cache.Clear();
        cache[key] = result;
        return result;
    }
}
