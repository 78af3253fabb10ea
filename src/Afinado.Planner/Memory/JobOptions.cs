namespace Afinado.Planner.Memory;

public enum JobTask { Train, Infer }

/// <summary>
/// Precision regimes (memory.md §1.5 table): fp32; AMP = fp32 weights (the master copy) with 16-bit autocast copies
/// and fp32 gradients/states; pure bf16/fp16 = 16-bit weights, gradients and optimizer states.
/// </summary>
public enum Precision { Fp32, AmpBf16, AmpFp16, Bf16, Fp16 }

public enum OptimizerKind { Sgd, SgdMomentum, AdamW, AdamW8bit, PagedAdamW8bit, Adafactor }

public enum Checkpointing { None, Full }

/// <summary>Eager attention materialises the s×s scores; SDPA (flash / memory-efficient / CPU flash) does not.</summary>
/// <summary>Attention implementation: eager (explicit softmax), sdpa (torch SDPA: flash / memory-efficient, or its math
/// kernel for fp32 with grouped KV heads), flash (transformers' flash_attention_2: fused, 16-bit only, so fp32 q/k/v are
/// cast to the compute dtype first, and grouped KV heads are never repeated).</summary>
public enum AttentionKernel { Eager, Sdpa, Flash }

/// <summary>transformers' KV cache: <c>DynamicCache</c> (generate's default: grows by torch.cat every step) or
/// <c>StaticCache</c> (cache_implementation="static": allocated at its full length at the first update, written in place).</summary>
public enum KvCacheKind { Dynamic, Static }

/// <summary>How transformers 5 runs a MoE block's stacked experts (<c>experts_implementation</c>): its eager loop over the
/// experts (<c>index_add_</c> of each expert's rows), or <c>grouped_mm_experts_forward</c> (every token–expert pair sorted
/// by expert through two grouped matmuls), the default wherever torch ≥ 2.9 offers <c>grouped_mm</c>
/// (PreTrainedModel.get_correct_experts_implementation, integrations/moe.py).</summary>
public enum ExpertsBackend { Eager, GroupedMm }

/// <summary>
/// How the trainable parameters learn (learning-rules.md). Backprop keeps the autograd graph; ES and MeZO-style direct ES
/// run forward passes only; DFA keeps each block's own graph but none between blocks; Guided ES is ES plus a surrogate gradient.
/// </summary>
public enum LearningRule
{
    Backprop,
    /// <summary>OpenAI-ES: the estimate goes to the optimizer as .grad (afinado train --rule es --optimizer adamw|momentum).</summary>
    Es,
    /// <summary>MeZO-style ES without an optimizer: θ updated in place pair by pair (afinado train --rule es --optimizer sgd).</summary>
    EsDirect,
    Dfa,
    /// <summary>Guided ES with the DFA pseudo-gradient as surrogate (the trainer's default surrogate).</summary>
    GuidedEs,
}

public static class JobOptions
{
    public static string Name(this Precision p) => p switch
    {
        Precision.Fp32 => "fp32", Precision.AmpBf16 => "amp-bf16", Precision.AmpFp16 => "amp-fp16",
        Precision.Bf16 => "bf16", Precision.Fp16 => "fp16", _ => p.ToString(),
    };

    public static string Name(this OptimizerKind o) => o switch
    {
        OptimizerKind.Sgd => "sgd", OptimizerKind.SgdMomentum => "sgd-momentum", OptimizerKind.AdamW => "adamw",
        OptimizerKind.AdamW8bit => "adamw-8bit", OptimizerKind.PagedAdamW8bit => "paged-adamw-8bit", OptimizerKind.Adafactor => "adafactor",
        _ => o.ToString(),
    };

    public static string Name(this LearningRule r) => r switch
    {
        LearningRule.Backprop => "backprop", LearningRule.Es => "es", LearningRule.EsDirect => "es-direct",
        LearningRule.Dfa => "dfa", LearningRule.GuidedEs => "guided-es", _ => r.ToString(),
    };

    /// <summary>Forward passes only: no autograd graph is kept (ES, MeZO).</summary>
    public static bool IsForwardOnly(this LearningRule r) => r is LearningRule.Es or LearningRule.EsDirect;

    public static bool IsAmp(this Precision p) => p is Precision.AmpBf16 or Precision.AmpFp16;

    /// <summary>Bytes of a matmul output / activation: 2 except in plain fp32.</summary>
    public static int ComputeBytes(this Precision p) => p == Precision.Fp32 ? 4 : 2;

    /// <summary>The 16-bit dtype of compute (fp32 for the fp32 regime).</summary>
    public static DType ComputeDType(this Precision p) => p switch
    {
        Precision.Fp32 => DType.Fp32,
        Precision.AmpFp16 or Precision.Fp16 => DType.Fp16,
        _ => DType.Bf16,
    };

    public static Precision ParsePrecision(string text) => Parse(text, JobParameters.Precision, Enum.GetValues<Precision>(), Name);
    public static OptimizerKind ParseOptimizer(string text) => Parse(text, JobParameters.Optimizer, Enum.GetValues<OptimizerKind>(), Name);
    public static LearningRule ParseRule(string text) => Parse(text, JobParameters.Rule, Enum.GetValues<LearningRule>(), Name);
    public static JobTask ParseTask(string text) => Parse(text, JobParameters.Task, Enum.GetValues<JobTask>(), t => t.ToString().ToLowerInvariant());
    public static Checkpointing ParseCheckpointing(string text) => Parse(text, JobParameters.Checkpointing, Enum.GetValues<Checkpointing>(), c => c.ToString().ToLowerInvariant());
    public static AttentionKernel ParseAttention(string text) => Parse(text, JobParameters.Attention, Enum.GetValues<AttentionKernel>(), a => a.ToString().ToLowerInvariant());
    public static string Name(this ExpertsBackend b) => b == ExpertsBackend.GroupedMm ? "grouped_mm" : "eager";

    public static ExpertsBackend ParseExperts(string text) => Parse(text, JobParameters.Experts, Enum.GetValues<ExpertsBackend>(), b => b.Name());

    public static KvCacheKind ParseKvCache(string text) => Parse(text, JobParameters.KvCache, Enum.GetValues<KvCacheKind>(), k => k.ToString().ToLowerInvariant());

    private static T Parse<T>(string text, InputText field, T[] values, Func<T, string> name)
    {
        foreach (var v in values)
            if (string.Equals(name(v), text.Trim(), StringComparison.OrdinalIgnoreCase)) return v;
        throw new InputError(field, $"\"{text}\" is not a valid value", $"Use one of: {string.Join(", ", values.Select(name))}.");
    }
}
