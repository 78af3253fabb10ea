namespace Afinado.Planner.Architecture;

/// <summary>
/// Phi-3 (transformers <c>Phi3ForCausalLM</c>): Llama-like, but q,k,v are one fused <c>qkv_proj</c> and gate and up are
/// one fused <c>gate_up_proj</c> of width 2·intermediate. No biases, RMSNorm, untied head.
/// </summary>
internal static class Phi3Family
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        int hidden = c.Dim("hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = c.Dim("num_attention_heads");
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? heads;
        int vocab = c.Dim("vocab_size");
        int inter = c.Dim("intermediate_size");
        int headDim = c.OptionalDim("head_dim") ?? LlamaFamily.DivideHidden(c, hidden, heads);
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        int qkvWidth = ArchitectureLimits.Width(c, "(num_attention_heads + 2·num_key_value_heads) × head_dim", (long)(heads + 2L * kvHeads) * headDim);
        int qWidth = heads * headDim;
        int gateUp = ArchitectureLimits.Width(c, "2 × intermediate_size", 2L * inter);
        bool tied = c.Bool("tie_word_embeddings", false);

        var t = new TensorList();
        t.Embedding("model.embed_tokens.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t.Norm(p + "input_layernorm", hidden, false, i);
            t.Linear(p + "self_attn.qkv_proj", qkvWidth, hidden, false, TensorRole.AttnQkv, i);
            t.Linear(p + "self_attn.o_proj", hidden, qWidth, false, TensorRole.AttnOut, i);
            t.Norm(p + "post_attention_layernorm", hidden, false, i);
            t.Linear(p + "mlp.gate_up_proj", gateUp, hidden, false, TensorRole.MlpGateUp, i);
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
            Norm = NormKind.RmsNorm,
            NormEpsilon = c.PositiveNumber("rms_norm_eps", 1e-5),
            Positions = PositionKind.Rotary,
            RopeTheta = c.PositiveNumber("rope_theta", 10000.0),
            RopeScaling = RopeScaling.Read(c),
            PartialRotaryFactor = c.Fraction("partial_rotary_factor", 1.0),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 4096,
            TiedEmbeddings = tied,
            SlidingWindow = c.OptionalDim("sliding_window"),
            AttentionDropout = c.Probability("attention_dropout", 0),
            ResidualDropout = c.Probability("resid_pdrop", 0),
            EmbeddingDropout = c.Probability("embd_pdrop", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "model.",
            Tensors = t.Tensors,
        };
    }
}
