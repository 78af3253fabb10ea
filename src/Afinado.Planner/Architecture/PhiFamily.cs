namespace Afinado.Planner.Architecture;

/// <summary>
/// phi-1, phi-1.5 and phi-2 (transformers <c>PhiForCausalLM</c>): one LayerNorm per layer feeding attention and MLP in
/// parallel, separate biased q/k/v projections, a biased <c>dense</c> output, a plain GeLU MLP (<c>fc1</c>/<c>fc2</c>),
/// partial RoPE, and an untied <c>lm_head</c> with a bias.
/// </summary>
internal static class PhiFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        int hidden = c.Dim("hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = c.Dim("num_attention_heads");
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? heads;
        int vocab = c.Dim("vocab_size");
        int inter = c.Dim("intermediate_size");
        int headDim = LlamaFamily.DivideHidden(c, hidden, heads);
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        int kvWidth = kvHeads * headDim;
        bool qkLayerNorm = c.Bool("qk_layernorm", false);
        bool tied = c.Bool("tie_word_embeddings", false);

        var t = new TensorList();
        t.Embedding("model.embed_tokens.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t.Linear(p + "self_attn.q_proj", hidden, hidden, true, TensorRole.AttnQ, i);
            t.Linear(p + "self_attn.k_proj", kvWidth, hidden, true, TensorRole.AttnK, i);
            t.Linear(p + "self_attn.v_proj", kvWidth, hidden, true, TensorRole.AttnV, i);
            t.Linear(p + "self_attn.dense", hidden, hidden, true, TensorRole.AttnOut, i);
            if (qkLayerNorm)
            {
                t.Norm(p + "self_attn.q_layernorm", headDim, true, i);
                t.Norm(p + "self_attn.k_layernorm", headDim, true, i);
            }
            t.Linear(p + "mlp.fc1", inter, hidden, true, TensorRole.MlpUp, i);
            t.Linear(p + "mlp.fc2", hidden, inter, true, TensorRole.MlpDown, i);
            t.Norm(p + "input_layernorm", hidden, true, i);
        }
        t.Norm("model.final_layernorm", hidden, true);
        // lm_head always has its own bias; tying shares only the weight with embed_tokens.
        if (tied) t.Bias("lm_head", vocab, TensorRole.LmHead);
        else t.Linear("lm_head", vocab, hidden, true, TensorRole.LmHead);

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
            Mlp = MlpKind.Plain,
            Activation = c.OptionalString("hidden_act") ?? "gelu_new",
            Norm = NormKind.LayerNorm,
            NormBias = true,
            NormEpsilon = c.PositiveNumber("layer_norm_eps", 1e-5),
            NormsPerLayer = 1,
            ParallelResidual = true,
            Positions = PositionKind.Rotary,
            RopeTheta = c.PositiveNumber("rope_theta", 10000.0),
            RopeScaling = RopeScaling.Read(c),
            PartialRotaryFactor = c.Fraction("partial_rotary_factor", 0.5),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 2048,
            TiedEmbeddings = tied,
            QkvBias = true,
            AttentionOutBias = true,
            MlpBias = true,
            LmHeadBias = true,
            QkNorm = qkLayerNorm,
            AttentionDropout = c.Probability("attention_dropout", 0),
            ResidualDropout = c.Probability("resid_pdrop", 0),
            EmbeddingDropout = c.Probability("embd_pdrop", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "model.",
            Tensors = t.Tensors,
        };
    }
}
