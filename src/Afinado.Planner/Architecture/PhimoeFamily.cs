namespace Afinado.Planner.Architecture;

/// <summary>
/// Phi-3.5-MoE (transformers <c>PhimoeForCausalLM</c>, models/phimoe/modeling_phimoe.py and configuration_phimoe.py).
/// Mixtral's layout (separate q/k/v/o, <c>block_sparse_moe.gate</c> router and <c>num_local_experts</c> gated experts
/// <c>w1</c>/<c>w2</c>/<c>w3</c> of <c>intermediate_size</c>) with three differences that change the tensor list:
/// every norm is an <c>nn.LayerNorm</c> with bias (eps read from <c>rms_norm_eps</c>), q/k/v/o carry a bias when
/// <c>attention_bias</c>, and <c>lm_head</c> carries one when <c>lm_head_bias</c>. Defaults are PhimoeConfig's.
/// </summary>
internal static class PhimoeFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        // PhimoeConfig defaults every width to Phi-3.5-MoE's, so a sparse config is a complete one.
        int hidden = c.OptionalDim("hidden_size") ?? 4096;
        int layers = c.Has("num_hidden_layers") ? c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers") : 32;
        int heads = c.OptionalDim("num_attention_heads") ?? 32;
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? 8;
        int vocab = c.OptionalDim("vocab_size") ?? 32064;
        int inter = c.OptionalDim("intermediate_size") ?? 6400;
        // LlamaAttention, which Phimoe reuses, reads head_dim when set and hidden/heads otherwise.
        int headDim = c.OptionalDim("head_dim") ?? LlamaFamily.DivideHidden(c, hidden, heads);
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        int qWidth = ArchitectureLimits.Width(c, "num_attention_heads × head_dim", (long)heads * headDim);
        int kvWidth = ArchitectureLimits.Width(c, "num_key_value_heads × head_dim", (long)kvHeads * headDim);

        int experts = c.Bounded("num_local_experts", 16, 1, ArchitectureLimits.MaxExperts);
        int perToken = c.Bounded("num_experts_per_tok", 2, 1, ArchitectureLimits.MaxExperts);
        if (perToken > experts)
            throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds num_local_experts {experts}", "A token cannot be routed to more experts than exist.");
        // sparsemixer picks a first and a second expert and nothing else (older releases raise "top_k must be equal to 2"),
        // so any other value would make the active-parameter count describe a network transformers does not build.
        if (perToken != 2)
            throw c.Invalid("num_experts_per_tok", $"must be 2, found {perToken}", "PhiMoE's sparsemixer routes every token to exactly two experts.");
        if ((long)layers * experts > ArchitectureLimits.MaxExpertMlps)
            throw c.Invalid("num_local_experts", $"{experts} experts × {layers} layers is beyond any real model", "Check config.json for a typo.");

        bool attentionBias = c.Bool("attention_bias", false);
        bool headBias = c.Bool("lm_head_bias", false);
        bool tied = c.Bool("tie_word_embeddings", false);

        var t = new TensorList();
        t.Embedding("model.embed_tokens.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t.Norm(p + "input_layernorm", hidden, true, i);
            t.Linear(p + "self_attn.q_proj", qWidth, hidden, attentionBias, TensorRole.AttnQ, i);
            t.Linear(p + "self_attn.k_proj", kvWidth, hidden, attentionBias, TensorRole.AttnK, i);
            t.Linear(p + "self_attn.v_proj", kvWidth, hidden, attentionBias, TensorRole.AttnV, i);
            t.Linear(p + "self_attn.o_proj", hidden, qWidth, attentionBias, TensorRole.AttnOut, i);
            t.Norm(p + "post_attention_layernorm", hidden, true, i);
            t.Linear(p + "block_sparse_moe.gate", experts, hidden, false, TensorRole.Router, i);
            for (int e = 0; e < experts; e++)
            {
                // Expert indices let ActiveParameterCount keep only num_experts_per_tok of them.
                string x = $"{p}block_sparse_moe.experts.{e}.";
                t.Linear(x + "w1", inter, hidden, false, TensorRole.MlpGate, i, e);
                t.Linear(x + "w2", hidden, inter, false, TensorRole.MlpDown, i, e);
                t.Linear(x + "w3", inter, hidden, false, TensorRole.MlpUp, i, e);
            }
        }
        t.Norm("model.norm", hidden, true);
        // Tying shares lm_head.weight with the embedding; its bias is its own parameter either way.
        if (!tied) t.Linear("lm_head", vocab, hidden, headBias, TensorRole.LmHead);
        else if (headBias) t.Bias("lm_head", vocab, TensorRole.LmHead);

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
            NormBias = true,
            // The LayerNorms are built with eps=config.rms_norm_eps; there is no layer_norm_eps key.
            NormEpsilon = c.PositiveNumber("rms_norm_eps", 1e-5),
            Positions = PositionKind.Rotary,
            RopeTheta = c.PositiveNumber("rope_theta", 1e6),
            RopeScaling = RopeScaling.Read(c),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 4096 * 32,
            TiedEmbeddings = tied,
            QkvBias = attentionBias,
            AttentionOutBias = attentionBias,
            LmHeadBias = headBias,
            NumExperts = experts,
            ExpertsPerToken = perToken,
            MoeLoop = MoeTrainingLoop.Phimoe,
            // PhimoeExperts is stacked in transformers 5; PhimoeTopKRouter subclasses nn.Linear.
            RoutedExpertsAreParameters = true,
            // PhimoeConfig's default is 0.0; Phi-3.5-MoE's config.json sets 0.01.
            MoeInputJitter = c.Probability("input_jitter_noise", 0),
            // The attention passes sliding_window whenever the config sets it (PhimoeConfig default None).
            SlidingWindow = c.OptionalDim("sliding_window"),
            AttentionDropout = c.Probability("attention_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "model.",
            Tensors = t.Tensors,
        };
    }
}
