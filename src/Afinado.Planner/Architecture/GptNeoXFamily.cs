namespace Afinado.Planner.Architecture;

/// <summary>
/// GPT-NeoX (Pythia, StableLM-alpha, GPT-NeoX-20B; transformers <c>GPTNeoXForCausalLM</c>): LayerNorms with bias, fused
/// <c>query_key_value</c>, plain GeLU MLP, partial RoPE (<c>rotary_pct</c>), parallel residual by default, untied
/// <c>embed_out</c>.
/// </summary>
internal static class GptNeoXFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        int hidden = c.Dim("hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = c.Dim("num_attention_heads");
        int vocab = c.Dim("vocab_size");
        int inter = c.Dim("intermediate_size");
        int headDim = LlamaFamily.DivideHidden(c, hidden, heads);
        int qkv = ArchitectureLimits.Width(c, "3 × hidden_size", 3L * hidden);
        bool attnBias = c.Bool("attention_bias", true);
        bool tied = c.Bool("tie_word_embeddings", false);

        var t = new TensorList();
        t.Embedding("gpt_neox.embed_in.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"gpt_neox.layers.{i}.";
            t.Norm(p + "input_layernorm", hidden, true, i);
            t.Norm(p + "post_attention_layernorm", hidden, true, i);
            t.Linear(p + "attention.query_key_value", qkv, hidden, attnBias, TensorRole.AttnQkv, i);
            t.Linear(p + "attention.dense", hidden, hidden, attnBias, TensorRole.AttnOut, i);
            t.Linear(p + "mlp.dense_h_to_4h", inter, hidden, true, TensorRole.MlpUp, i);
            t.Linear(p + "mlp.dense_4h_to_h", hidden, inter, true, TensorRole.MlpDown, i);
        }
        t.Norm("gpt_neox.final_layer_norm", hidden, true);
        if (!tied) t.Linear("embed_out", vocab, hidden, false, TensorRole.LmHead);

        return new ModelArchitecture
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = heads,
            HeadDim = headDim,
            IntermediateSize = inter,
            Mlp = MlpKind.Plain,
            Activation = c.OptionalString("hidden_act") ?? "gelu",
            Norm = NormKind.LayerNorm,
            NormBias = true,
            NormEpsilon = c.PositiveNumber("layer_norm_eps", 1e-5),
            ParallelResidual = c.Bool("use_parallel_residual", true),
            Positions = PositionKind.Rotary,
            RopeTheta = c.Has("rotary_emb_base") ? c.PositiveNumber("rotary_emb_base", 10000) : c.PositiveNumber("rope_theta", 10000),
            RopeScaling = RopeScaling.Read(c),
            PartialRotaryFactor = c.Has("rotary_pct") ? c.Fraction("rotary_pct", 0.25) : c.Fraction("partial_rotary_factor", 0.25),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 2048,
            TiedEmbeddings = tied,
            QkvBias = attnBias,
            AttentionOutBias = attnBias,
            MlpBias = true,
            AttentionDropout = c.Probability("attention_dropout", 0),
            ResidualDropout = c.Probability("hidden_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "gpt_neox.",
            Tensors = t.Tensors,
        };
    }
}
