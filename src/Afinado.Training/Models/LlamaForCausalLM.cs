using Afinado.Planner;
using Afinado.Planner.Architecture;
using static TorchSharp.torch;
using Afinado.Planner.Memory;
using Afinado.Training.Loop;

namespace Afinado.Training.Models;

/// <summary>
/// A Llama-style causal language model built from the planner's <see cref="ModelArchitecture"/> (one parser for both),
/// with the exact Hugging Face parameter names (<c>model.layers.0.self_attn.q_proj.weight</c>, <c>lm_head.weight</c>)
/// so safetensors checkpoints from transformers load as they are. Input: token ids [B,T] int64; output: logits [B,T,V].
/// </summary>
public sealed class LlamaForCausalLM : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly AdaptableLinear? lmHead;

    public LlamaForCausalLM(ModelArchitecture arch, AttentionKernel attention = AttentionKernel.Sdpa, double initStd = 0.02)
        : base(nameof(LlamaForCausalLM))
    {
        EnsureSupported(arch);
        Architecture = arch;
        Model = new LlamaModel(arch);
        register_module("model", Model);
        if (!arch.TiedEmbeddings)
        {
            lmHead = new AdaptableLinear(arch.HiddenSize, arch.VocabSize, arch.LmHeadBias);
            register_module("lm_head", lmHead);
        }
        Attention = attention;
        InitWeights(initStd);
    }

    public ModelArchitecture Architecture { get; }
    public LlamaModel Model { get; }

    public AttentionKernel Attention
    {
        get => Model.Layers.Count > 0 ? Model.Layers[0].SelfAttention.Kernel : AttentionKernel.Sdpa;
        set { foreach (var l in Model.Layers) l.SelfAttention.Kernel = value; }
    }

    public bool GradientCheckpointing { get => Model.GradientCheckpointing; set => Model.GradientCheckpointing = value; }

    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        return Head(Model.call(inputIds)).MoveToOuterDisposeScope();
    }

    /// <summary>The head over final hidden states: the (tied) projection, then Gemma 2's final soft-cap
    /// (Gemma2ForCausalLM: <c>logits / c</c>, tanh, <c>· c</c>).</summary>
    private Tensor Head(Tensor h)
    {
        var logits = lmHead is null ? nn.functional.linear(h, Model.EmbedTokens.weight!) : lmHead.call(h);
        // tanh keeps its output for backward: the cap's product is a new tensor, not an in-place change of it.
        return Architecture.FinalLogitSoftcap is { } cap ? logits.div(cap).tanh().mul(cap) : logits;
    }

    /// <summary>
    /// Logits of the last position of <paramref name="inputIds"/> [B, T] after appending them to <paramref name="cache"/>:
    /// the whole prompt first, then one token per step (transformers' generate with a DynamicCache). [B, V].
    /// </summary>
    public Tensor Step(Tensor inputIds, KvCache cache)
    {
        using var scope = NewDisposeScope();
        var x = Model.Embed(inputIds);
        for (int i = 0; i < Model.Layers.Count; i++) x = Model.Layers[i].Step(x, cache[i]);
        var last = Model.Norm.call(x.narrow(1, x.shape[1] - 1, 1)).squeeze(1);
        return Head(last).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The same forward as <see cref="forward"/>, with each decoder block's output passed through <paramref name="blockOutput"/>
    /// before the next block sees it (DFA detaches there and later injects the output error). Returns logits.
    /// No dispose scope of its own: the tapped block outputs must outlive the forward (the caller's step scope frees them).
    /// </summary>
    public Tensor Forward(Tensor inputIds, Func<Tensor, Tensor> blockOutput)
    {
        var x = Model.Embed(inputIds);
        foreach (var layer in Model.Layers) x = blockOutput(layer.call(x));
        return Head(Model.Norm.call(x));
    }

    /// <summary>Every linear layer with its Hugging Face module path (e.g. <c>model.layers.0.mlp.up_proj</c>).</summary>
    public IEnumerable<(string Path, AdaptableLinear Layer)> Linears() =>
        named_modules().Where(m => m.module is AdaptableLinear).Select(m => (m.name, (AdaptableLinear)m.module));

    /// <summary>transformers' LlamaPreTrainedModel init: N(0, initializer_range) for linears and embeddings, ones for norms.</summary>
    private void InitWeights(double std)
    {
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) continue; // RMSNorm weights start at one
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else nn.init.normal_(p, 0, std);
        }
    }

    private static void EnsureSupported(ModelArchitecture arch)
    {
        if (arch.Support == ModelSupport.Generic)
            throw new InputError(RunParameters.Model, $"{arch.ModelType} was read generically from its safetensors headers (roles guessed from tensor names)", "Plan it with `afinado plan`; to train, pick a llama, mistral or qwen model.");
        if (arch.IsMoE)
            throw new InputError(RunParameters.Model, $"{arch.Name} is a mixture-of-experts model ({arch.NumExperts} experts)", "The trainer builds dense Llama-style decoders only; pick a dense model.");
        // The planner reads these, but this builder has only the pre-norm Llama block and Gemma 2's four-norm block:
        // OLMo 2's post-norms and full-width q/k norms, Granite's multipliers, SmolLM3's NoPE layers, the vision towers of
        // gemma3, Qwen2.5-VL, Qwen3-VL and Mistral Small 3 (and their mrope), and Llama 3.2 Vision's cross-attention
        // layers would silently train a different network.
        if (arch.ModelType is "olmo2" or "granite" or "smollm3" or "gemma3" or "qwen2_5_vl" or "qwen3_vl" or "mistral3" or "mllama")
            throw new InputError(RunParameters.Model, $"{arch.ModelType} is planned but not yet built by the trainer",
                arch.ModelType == "gemma3" ? "Train its text model: a gemma3_text config (Gemma 3 1B is one), or plan this one with `afinado plan`."
                : "Plan it with `afinado plan`; to train, pick a llama, mistral, qwen or gemma model.");
        if (arch.Positions != PositionKind.Rotary || arch.Norm != NormKind.RmsNorm || arch.Mlp != MlpKind.Gated)
            throw new InputError(RunParameters.Model, $"{arch.ModelType} is not a Llama-style decoder (RoPE, RMSNorm, gated MLP)", "Pick a llama, mistral, qwen or gemma model.");
        // Config features the planner reads and this decoder does not compute: refused by name, never trained silently
        // as a different network. Gemma's (1 + w) norms, √hidden embedding scale, soft-capping, query_pre_attn_scalar
        // and four norms per layer are computed (only for the gemma families, whose layout they belong to).
        bool gemma = arch.ModelType is "gemma" or "gemma2" or "gemma3_text";
        string? missing = arch.NormWeightOffset != 0 && !gemma ? "the norm weight offset (x̂ · (1 + w))"
            : arch.EmbeddingMultiplier != 1 && !gemma ? "the embedding multiplier"
            : arch.NormsPerLayer != 2 && !(gemma && arch.NormsPerLayer == 4) ? $"{arch.NormsPerLayer} norms per layer"
            : !Rotary.Supports(arch.RopeScaling) ? $"rope_scaling type {arch.RopeScaling!.Type}"
            : null;
        if (missing is not null)
            throw new InputError(RunParameters.Model, $"{arch.ModelType}'s {missing} is not implemented by the trainer", "Plan it with `afinado plan`; to train, pick a llama, mistral, qwen or gemma model.");
    }
}
