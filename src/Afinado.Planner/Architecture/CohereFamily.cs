namespace Afinado.Planner.Architecture;

/// <summary>
/// Cohere's Command models (transformers models/cohere, models/cohere2): <c>cohere</c> is Command R / R+
/// (CohereForCausalLM), <c>cohere2</c> Command R7B and Command A (Cohere2ForCausalLM). One norm per layer whose output feeds
/// attention and MLP in parallel (<c>x + attn(ln(x)) + mlp(ln(x))</c>); the norm is CohereLayerNorm, a LayerNorm without
/// bias computed by hand in fp32 (<c>hidden_states.to(torch.float32)</c>, mean, variance, rsqrt, weight in fp32); attention
/// q/k/v/o with <c>attention_bias</c>; a bias-free gated MLP; tied embeddings by default; logits multiplied by
/// <c>logit_scale</c>. Command R+ normalises q and k per head (<c>use_qk_norm</c>: CohereLayerNorm weights of shape
/// [heads, head_dim] and [kv_heads, head_dim]). Cohere2 slides a 4,096-token window on three layers of four
/// (<c>layer_types</c>, else <c>sliding_window_pattern</c>); its full layers use no RoPE.
/// </summary>
internal static class CohereFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        bool cohere2 = modelType == "cohere2";
        int hidden = c.Dim("hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = c.Dim("num_attention_heads");
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? heads;
        int vocab = c.Dim("vocab_size");
        int inter = c.Dim("intermediate_size");
        int headDim = c.OptionalDim("head_dim") ?? LlamaFamily.DivideHidden(c, hidden, heads);
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        int qWidth = ArchitectureLimits.Width(c, "num_attention_heads × head_dim", (long)heads * headDim);
        int kvWidth = ArchitectureLimits.Width(c, "num_key_value_heads × head_dim", (long)kvHeads * headDim);
        bool bias = c.Bool("attention_bias", false);
        // Cohere2Config has no use_qk_norm; CohereConfig defaults it to false.
        bool qkNorm = !cohere2 && c.Bool("use_qk_norm", false);
        bool tied = c.Bool("tie_word_embeddings", true);
        double logitScale = c.PositiveNumber("logit_scale", 0.0625);
        int? window = cohere2 ? c.OptionalDim("sliding_window") ?? 4096 : null;
        bool[]? sliding = cohere2 ? LayerTypes.Read(c, layers, c.Bounded("sliding_window_pattern", 4, 1, ArchitectureLimits.MaxLayers)) : null;

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
            if (qkNorm)
            {
                // CohereLayerNorm(hidden_size=(num_heads, head_dim)): one weight per head and channel.
                t.Add(new ParameterTensor(p + "self_attn.q_norm.weight", [heads, headDim], TensorRole.Norm, i));
                t.Add(new ParameterTensor(p + "self_attn.k_norm.weight", [kvHeads, headDim], TensorRole.Norm, i));
            }
            t.Linear(p + "mlp.gate_proj", inter, hidden, false, TensorRole.MlpGate, i);
            t.Linear(p + "mlp.up_proj", inter, hidden, false, TensorRole.MlpUp, i);
            t.Linear(p + "mlp.down_proj", hidden, inter, false, TensorRole.MlpDown, i);
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
            Mlp = MlpKind.Gated,
            Activation = c.OptionalString("hidden_act") ?? "silu",
            Norm = NormKind.LayerNorm,
            NormBias = false,
            NormUpcastsToFp32 = true,
            NormEpsilon = c.PositiveNumber("layer_norm_eps", 1e-5),
            NormsPerLayer = 1,
            ParallelResidual = true,
            Positions = PositionKind.Rotary,
            RopeTheta = c.PositiveNumber("rope_theta", 10000.0),
            RopeScaling = RopeScaling.Read(c),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 8192,
            TiedEmbeddings = tied,
            QkvBias = bias,
            AttentionOutBias = bias,
            QkNorm = qkNorm,
            // The model multiplies its logits by logit_scale; LogitsScaling divides them.
            LogitsScaling = 1 / logitScale,
            SlidingWindow = window,
            SlidingLayers = sliding,
            AttentionDropout = c.Probability("attention_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "model.",
            Tensors = t.Tensors,
        };
    }
}
