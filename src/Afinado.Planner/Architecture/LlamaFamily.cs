namespace Afinado.Planner.Architecture;

/// <summary>
/// Llama-style decoders: RMSNorm, RoPE, GQA, gated MLP. Covers llama, mistral, mixtral (MoE), qwen2 (q/k/v bias),
/// qwen3 (q/k norms), qwen2_moe / qwen3_moe (qwen2 / qwen3 attention plus <see cref="QwenMoeBlock"/>), gemma (GeGLU,
/// (1+w) norms, √h embedding scale, tied), gemma2 (4 norms per layer, soft-capping, alternating sliding window), gemma3_text
/// (gemma2's layer plus q/k norms over head_dim, per-layer <c>layer_types</c>, a local RoPE base, no attention soft-capping), olmo2
/// (post-norms only, q/k RMSNorm over the full projection widths), granite (llama tensors, scalar multipliers) and
/// smollm3 (llama tensors, NoPE layers). Tensor names follow transformers' <c>*ForCausalLM</c> for each model type.
/// </summary>
internal static class LlamaFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        bool gemma = modelType is "gemma" or "gemma2" or "gemma3_text";
        // Gemma 3's decoder layer is Gemma 2's (four norms, query_pre_attn_scalar, windowed layers); flags below say where it differs.
        bool gemma2 = modelType is "gemma2" or "gemma3_text";
        bool gemma3 = modelType == "gemma3_text";
        bool qwen2 = modelType is "qwen2" or "qwen2_moe";
        bool qwen3 = modelType is "qwen3" or "qwen3_moe";
        bool moe = modelType == "mixtral";
        bool qwenMoe = modelType is "qwen2_moe" or "qwen3_moe";
        bool olmo2 = modelType == "olmo2";
        bool granite = modelType == "granite";
        bool smollm3 = modelType == "smollm3";

        // Gemma3TextConfig defaults every width (a gemma3 config's text_config names only the few that differ); the other
        // families here require them.
        int Width(string key, int gemma3Default) => gemma3 ? c.OptionalDim(key) ?? gemma3Default : c.Dim(key);
        int hidden = Width("hidden_size", 2304);
        int layers = gemma3 && !c.Has("num_hidden_layers") ? 26 : c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = Width("num_attention_heads", 8);
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? (gemma3 ? 4 : heads);
        int vocab = Width("vocab_size", 262_208);
        // The qwen MoE config classes default intermediate_size (used only by dense layers).
        int inter = qwenMoe ? c.OptionalDim("intermediate_size") ?? (qwen2 ? 5632 : 6144) : Width("intermediate_size", 9216);
        int headDim = c.OptionalDim("head_dim") ?? (gemma3 ? 256 : DivideHidden(c, hidden, heads));
        CheckGroups(c, heads, kvHeads);
        int qWidth = ArchitectureLimits.Width(c, "num_attention_heads × head_dim", (long)heads * headDim);
        int kvWidth = ArchitectureLimits.Width(c, "num_key_value_heads × head_dim", (long)kvHeads * headDim);

        int experts = moe ? c.Count(ArchitectureLimits.MaxExperts, "num_local_experts") : 0;
        int perToken = moe ? c.Dim("num_experts_per_tok") : 0;
        if (moe && perToken > experts)
            throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds num_local_experts {experts}", "A token cannot be routed to more experts than exist.");
        if (moe && (long)layers * experts > ArchitectureLimits.MaxExpertMlps)
            throw c.Invalid("num_local_experts", $"{experts} experts × {layers} layers is beyond any real model", "Check config.json for a typo.");

        var qwenBlock = qwenMoe ? QwenMoeBlock.Read(c, modelType, layers) : null;

        // These read attention_bias (q,k,v and o); qwen2 always biases q,k,v and never o, and qwen2_moe does so unless its
        // config sets qkv_bias false (Qwen2MoeConfig.qkv_bias, default true); the rest never bias attention.
        bool attentionBias = (modelType is "llama" or "qwen3" or "qwen3_moe" or "olmo2" or "granite" or "smollm3" or "gemma3_text") && c.Bool("attention_bias", false);
        bool qkvBias = (qwen2 && (modelType != "qwen2_moe" || c.Bool("qkv_bias", true))) || attentionBias;
        // OLMo 2's MLP is built with bias=False whatever the config says; these three pass config.mlp_bias.
        bool mlpBias = (modelType is "llama" or "granite" or "smollm3") && c.Bool("mlp_bias", false);
        // Gemma's and SmolLM3's config classes default to tied embeddings; the others default to untied.
        bool tied = c.Bool("tie_word_embeddings", gemma || smollm3);
        var scaling = granite ? GraniteScaling.Read(c) : null;
        int? window = SlidingWindow(c, modelType);
        // Gemma and Qwen read layer_types when present; without it Gemma2Config alternates (pattern 2), Gemma3TextConfig
        // repeats sliding_window_pattern (default 6) and Qwen slides from max_window_layers on. Mistral, Mixtral and
        // Phi-3 have no layer_types: a set sliding_window makes every layer slide (transformers DynamicCache(config)).
        bool[]? slidingLayers = window is null ? null
            : gemma2 ? LayerTypes.Read(c, layers, gemma3 ? c.Bounded("sliding_window_pattern", 6, 1, ArchitectureLimits.MaxLayers) : 2)
            : qwen2 || qwen3 ? LayerTypes.ReadQwen(c, layers)
            : null;

        var t = new TensorList();
        t.Embedding("model.embed_tokens.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            // OLMo 2 normalises each block's output (post_*), so it has no input_layernorm.
            if (!olmo2) t.Norm(p + "input_layernorm", hidden, false, i);
            t.Linear(p + "self_attn.q_proj", qWidth, hidden, qkvBias, TensorRole.AttnQ, i);
            t.Linear(p + "self_attn.k_proj", kvWidth, hidden, qkvBias, TensorRole.AttnK, i);
            t.Linear(p + "self_attn.v_proj", kvWidth, hidden, qkvBias, TensorRole.AttnV, i);
            t.Linear(p + "self_attn.o_proj", hidden, qWidth, attentionBias, TensorRole.AttnOut, i);
            if (qwen3 || gemma3)
            {
                // Qwen3Attention and Gemma3Attention normalise each head: one weight of head_dim.
                t.Norm(p + "self_attn.q_norm", headDim, false, i);
                t.Norm(p + "self_attn.k_norm", headDim, false, i);
            }
            if (olmo2)
            {
                // Olmo2Attention normalises the whole q and k projections before splitting heads, so one weight per channel.
                t.Norm(p + "self_attn.q_norm", qWidth, false, i);
                t.Norm(p + "self_attn.k_norm", kvWidth, false, i);
            }
            t.Norm(p + "post_attention_layernorm", hidden, false, i);
            if (gemma2 || olmo2)
            {
                // Gemma 2 adds a pre-norm and a post-norm around the MLP; OLMo 2 only the post-norm.
                if (gemma2) t.Norm(p + "pre_feedforward_layernorm", hidden, false, i);
                t.Norm(p + "post_feedforward_layernorm", hidden, false, i);
            }
            if (qwenBlock is not null && qwenBlock.IsSparse(i))
                qwenBlock.Add(t, p, hidden, i);
            else if (moe)
            {
                t.Linear(p + "block_sparse_moe.gate", experts, hidden, false, TensorRole.Router, i);
                for (int e = 0; e < experts; e++)
                {
                    string x = $"{p}block_sparse_moe.experts.{e}.";
                    t.Linear(x + "w1", inter, hidden, false, TensorRole.MlpGate, i, e);
                    t.Linear(x + "w2", hidden, inter, false, TensorRole.MlpDown, i, e);
                    t.Linear(x + "w3", inter, hidden, false, TensorRole.MlpUp, i, e);
                }
            }
            else
            {
                t.Linear(p + "mlp.gate_proj", inter, hidden, mlpBias, TensorRole.MlpGate, i);
                t.Linear(p + "mlp.up_proj", inter, hidden, mlpBias, TensorRole.MlpUp, i);
                t.Linear(p + "mlp.down_proj", hidden, inter, mlpBias, TensorRole.MlpDown, i);
            }
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
            // Gemma's MLP reads hidden_activation and, when it is null, uses gelu_pytorch_tanh (ignoring hidden_act "gelu").
            Activation = gemma ? c.OptionalString("hidden_activation") ?? "gelu_pytorch_tanh" : c.OptionalString("hidden_act") ?? "silu",
            Norm = NormKind.RmsNorm,
            // Olmo2Config defaults rms_norm_eps to 1e-5; the other config classes here to 1e-6.
            NormEpsilon = c.PositiveNumber("rms_norm_eps", olmo2 ? 1e-5 : 1e-6),
            // OLMo 2 has two (post-attention, post-feed-forward), the same count as the usual pre-norms.
            NormsPerLayer = gemma2 ? 4 : 2,
            NormWeightOffset = gemma ? 1.0 : 0.0,
            EmbeddingMultiplier = gemma ? Math.Sqrt(hidden) : scaling?.Embedding ?? 1.0,
            ScaledEmbeddingIsANewHiddenState = gemma && !gemma3,
            ResidualMultiplier = scaling?.Residual ?? 1.0,
            AttentionMultiplier = scaling?.Attention,
            LogitsScaling = scaling?.Logits ?? 1.0,
            Positions = PositionKind.Rotary,
            // Gemma3TextConfig's default base is 1,000,000 (global layers) and SmolLM3Config's 2,000,000; the others 10,000.
            RopeTheta = c.PositiveNumber("rope_theta", gemma3 ? 1_000_000.0 : smollm3 ? 2_000_000.0 : 10000.0),
            LocalRopeTheta = gemma3 ? c.PositiveNumber("rope_local_base_freq", 10000.0) : null,
            RopeScaling = RopeScaling.Read(c),
            PartialRotaryFactor = c.Fraction("partial_rotary_factor", 1.0),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? (gemma3 ? 131_072 : smollm3 || qwenMoe ? 32768 : 2048),
            TiedEmbeddings = tied,
            QkvBias = qkvBias,
            AttentionOutBias = attentionBias,
            MlpBias = mlpBias,
            QkNorm = qwen3 || olmo2 || gemma3,
            // A qwen MoE config whose layers are all dense (num_experts 0, or every layer in mlp_only_layers) is a dense model.
            NumExperts = qwenBlock is { } b ? (b.SparseLayers(layers) > 0 ? b.Experts : 0) : experts,
            ExpertsPerToken = qwenBlock is { } k ? (k.SparseLayers(layers) > 0 ? k.PerToken : 0) : perToken,
            ExpertIntermediateSize = qwenBlock?.ExpertWidth,
            MoeLoop = moe || qwenMoe ? MoeTrainingLoop.TopKExperts : MoeTrainingLoop.Other,
            RoutedExpertsAreParameters = moe || qwenMoe,
            MoeSharedExpertGate = qwenBlock?.SharedWidth is not null,
            RouterIsLinearModule = !(moe || qwenMoe),
            // Mixtral always renormalises; Qwen2/3 MoE's TopKRouter (transformers 5) does with norm_topk_prob (config default false).
            MoeRenormalizesTopK = moe || (qwenMoe && c.Bool("norm_topk_prob", false)),
            UnroutedMlpWidth = qwenBlock?.UnroutedWidth(layers, inter) ?? 0,
            SlidingWindow = window,
            SlidingLayers = slidingLayers,
            // Gemma3Attention keeps attn_logit_softcapping in the config but never passes it to the attention function.
            AttnLogitSoftcap = gemma2 && !gemma3 ? NullablePositive(c, "attn_logit_softcapping") : null,
            FinalLogitSoftcap = gemma2 ? NullablePositive(c, "final_logit_softcapping") : null,
            // Gemma3TextConfig defaults query_pre_attn_scalar to 256; Gemma2Config's scale falls back to head_dim here.
            QueryPreAttnScalar = gemma2 ? c.PositiveNumber("query_pre_attn_scalar", gemma3 ? 256 : headDim) : null,
            AttentionDropout = c.Probability("attention_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "model.",
            Tensors = t.Tensors,
        };
    }

    /// <summary>Mistral/Mixtral/Gemma 2 use <c>sliding_window</c> whenever it is set; Qwen2/3 only with <c>use_sliding_window</c>;
    /// Gemma3TextConfig defaults it to 4096. Zero or negative is an <see cref="InputError"/> naming the key.</summary>
    private static int? SlidingWindow(ConfigFields c, string modelType) => modelType switch
    {
        "mistral" or "mixtral" or "gemma2" => c.OptionalDim("sliding_window"),
        "gemma3_text" => c.OptionalDim("sliding_window") ?? 4096,
        "qwen2" or "qwen3" or "qwen2_moe" or "qwen3_moe" => c.Bool("use_sliding_window", false) ? c.OptionalDim("sliding_window") : null,
        // SmolLM3 slides only on its NoPE layers (layer_types); counting every layer as global never under-plans memory.
        _ => null,
    };

    private static double? NullablePositive(ConfigFields c, string key) => c.Has(key) ? c.PositiveNumber(key, 1) : null;

    internal static int DivideHidden(ConfigFields c, int hidden, int heads)
    {
        if (hidden % heads != 0)
            throw c.Invalid("num_attention_heads", $"{heads} does not divide hidden_size {hidden}", "Set head_dim explicitly or fix num_attention_heads.");
        return hidden / heads;
    }

    internal static void CheckGroups(ConfigFields c, int heads, int kvHeads)
    {
        if (heads % kvHeads != 0)
            throw c.Invalid("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}", "Grouped-query attention needs heads to be a multiple of key/value heads.");
    }
}
