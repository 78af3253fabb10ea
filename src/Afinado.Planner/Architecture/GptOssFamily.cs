using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// gpt-oss (transformers models/gpt_oss, <c>GptOssForCausalLM</c>): a pre-norm decoder whose attention has biases on q, k,
/// v and o and one learned sink logit per head (<c>self_attn.sinks</c>), alternating sliding-window (128) and full layers,
/// and an MoE MLP: a router with a bias (<c>mlp.router.weight</c> [E, hidden], <c>.bias</c> [E]) and every expert stacked in
/// four parameters, <c>mlp.experts.gate_up_proj</c> [E, hidden, 2·I], <c>gate_up_proj_bias</c> [E, 2·I],
/// <c>down_proj</c> [E, I, hidden], <c>down_proj_bias</c> [E, hidden] (GptOssExperts; I = intermediate_size). The hub
/// checkpoints store those expert weights in MXFP4 (<c>quantization_config.quant_method</c>).
/// </summary>
internal static class GptOssFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        int hidden = c.Dim("hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = c.Dim("num_attention_heads");
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? heads;
        int vocab = c.Dim("vocab_size");
        int inter = c.Dim("intermediate_size");
        // GptOssConfig's defaults: head_dim 64, attention_bias True, untied head, sliding_window 128.
        int headDim = c.OptionalDim("head_dim") ?? 64;
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        int qWidth = ArchitectureLimits.Width(c, "num_attention_heads × head_dim", (long)heads * headDim);
        int kvWidth = ArchitectureLimits.Width(c, "num_key_value_heads × head_dim", (long)kvHeads * headDim);
        int gateUp = ArchitectureLimits.Width(c, "2 × intermediate_size", 2L * inter);

        int experts = c.Count(ArchitectureLimits.MaxExperts, "num_local_experts");
        int perToken = c.Dim("num_experts_per_tok");
        if (perToken > experts)
            throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds num_local_experts {experts}", "A token cannot be routed to more experts than exist.");
        // The hub configs repeat the routing width as experts_per_token (the original OpenAI key): two values would be two models.
        if (c.OptionalDim("experts_per_token") is { } alias && alias != perToken)
            throw c.Invalid("experts_per_token", $"is {alias} but num_experts_per_tok is {perToken}", "Give one routing width; transformers reads num_experts_per_tok.");
        if ((long)layers * experts > ArchitectureLimits.MaxExpertMlps)
            throw c.Invalid("num_local_experts", $"{experts} experts × {layers} layers is beyond any real model", "Check config.json for a typo.");

        bool bias = c.Bool("attention_bias", true);
        bool tied = c.Bool("tie_word_embeddings", false);
        int window = c.OptionalDim("sliding_window") ?? 128;
        // GptOssConfig without layer_types: "sliding_attention" if bool((i + 1) % 2) else "full_attention" (even layers slide).
        bool[] sliding = LayerTypes.Read(c, layers, 2);

        var t = new TensorList();
        t.Embedding("model.embed_tokens.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t.Norm(p + "input_layernorm", hidden, false, i);
            t.Linear(p + "self_attn.q_proj", qWidth, hidden, bias, TensorRole.AttnQ, i);
            t.Linear(p + "self_attn.k_proj", kvWidth, hidden, bias, TensorRole.AttnK, i);
            t.Linear(p + "self_attn.v_proj", kvWidth, hidden, bias, TensorRole.AttnV, i);
            t.Linear(p + "self_attn.o_proj", hidden, qWidth, bias, TensorRole.AttnOut, i);
            t.Add(new ParameterTensor(p + "self_attn.sinks", [heads], TensorRole.AttnSink, i));
            t.Norm(p + "post_attention_layernorm", hidden, false, i);
            t.Linear(p + "mlp.router", experts, hidden, true, TensorRole.Router, i);
            string e = p + "mlp.experts.";
            t.Add(new ParameterTensor(e + "gate_up_proj", [experts, hidden, gateUp], TensorRole.MlpGateUp, i) { StackedExperts = experts });
            t.Add(new ParameterTensor(e + "gate_up_proj_bias", [experts, gateUp], TensorRole.MlpGateUp, i) { StackedExperts = experts });
            t.Add(new ParameterTensor(e + "down_proj", [experts, inter, hidden], TensorRole.MlpDown, i) { StackedExperts = experts });
            t.Add(new ParameterTensor(e + "down_proj_bias", [experts, hidden], TensorRole.MlpDown, i) { StackedExperts = experts });
        }
        t.Norm("model.norm", hidden, false);
        if (!tied) t.Linear("lm_head", vocab, hidden, false, TensorRole.LmHead);

        return new ModelArchitecture
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            IntermediateSize = inter,
            // GptOssExperts: gate and up interleaved in one projection, a clamped SiLU-like GLU (alpha 1.702, limit 7).
            Mlp = MlpKind.Gated,
            Activation = c.OptionalString("hidden_act") ?? "silu",
            Norm = NormKind.RmsNorm,
            NormEpsilon = c.PositiveNumber("rms_norm_eps", 1e-5),
            Positions = PositionKind.Rotary,
            RopeTheta = c.PositiveNumber("rope_theta", 150000.0),
            RopeScaling = RopeScaling.Read(c),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 131072,
            TiedEmbeddings = tied,
            QkvBias = bias,
            AttentionOutBias = bias,
            NumExperts = experts,
            ExpertsPerToken = perToken,
            MoeLoop = MoeTrainingLoop.GptOss,
            RouterIsLinearModule = false,
            // modular_gpt_oss.py: GptOssPreTrainedModel._supports_sdpa = False (the sinks are one more softmax column).
            SupportsSdpa = false,
            AttentionSinks = true,
            SlidingWindow = window,
            SlidingLayers = sliding,
            AttentionDropout = c.Probability("attention_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            CheckpointQuantMethod = QuantMethod(c),
            BaseModelPrefix = "model.",
            Tensors = t.Tensors,
        };
    }

    /// <summary><c>quantization_config.quant_method</c>: "mxfp4" (the hub checkpoints) or absent (a bf16 export); any
    /// other method stores these tensors in a way the planner does not count, so it names the key.</summary>
    private static string? QuantMethod(ConfigFields c) =>
        CheckpointQuantization.FamilyFormat(c, "mxfp4", "Use the hub checkpoint's config (mxfp4) or a bf16 export without quantization_config.") is null ? null : "mxfp4";
}
