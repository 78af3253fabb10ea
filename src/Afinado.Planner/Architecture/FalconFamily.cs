namespace Afinado.Planner.Architecture;

/// <summary>
/// Falcon (transformers <c>FalconForCausalLM</c>). Three attention layouts share one fused <c>query_key_value</c>:
/// <list type="bullet">
/// <item>Falcon-7B: <c>multi_query</c> (1 K/V head), <c>parallel_attn</c> with one <c>input_layernorm</c>.</item>
/// <item>Falcon-40B/180B: <c>new_decoder_architecture</c> (GQA with <c>num_kv_heads</c>) and two norms <c>ln_attn</c>/<c>ln_mlp</c>
/// (unless <c>num_ln_in_parallel_attn</c> is 1).</item>
/// <item>Falcon-RW: plain MHA, sequential block with <c>input_layernorm</c> + <c>post_attention_layernorm</c>, ALiBi, biases.</item>
/// </list>
/// LayerNorms have biases; linears have one only when <c>bias</c>; the head is tied by default.
/// </summary>
internal static class FalconFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        int hidden = c.Dim("hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers", "n_layer");
        int heads = c.Dim("num_attention_heads", "n_head");
        int vocab = c.Dim("vocab_size");
        int headDim = LlamaFamily.DivideHidden(c, hidden, heads);
        bool newArch = c.Bool("new_decoder_architecture", false);
        bool multiQuery = c.Bool("multi_query", true);
        bool parallel = c.Bool("parallel_attn", true);
        bool bias = c.Bool("bias", false);
        bool alibi = c.Bool("alibi", false);
        bool tied = c.Bool("tie_word_embeddings", true);
        int inter = c.OptionalDim("ffn_hidden_size") ?? ArchitectureLimits.Width(c, "4 × hidden_size", 4L * hidden);

        // FalconAttention: num_kv_heads counts only with the new architecture; otherwise multi_query means one K/V head.
        int kvHeads = newArch ? c.OptionalDim("num_kv_heads", "n_head_kv") ?? heads : multiQuery ? 1 : heads;
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        int qkv = ArchitectureLimits.Width(c, "(num_attention_heads + 2·kv heads) × head_dim", (heads + 2L * kvHeads) * headDim);
        // FalconDecoderLayer: the new architecture defaults to two norms in parallel mode.
        int parallelNorms = c.OptionalDim("num_ln_in_parallel_attn") ?? (newArch ? 2 : 1);
        if (parallel && parallelNorms is not (1 or 2))
            throw c.Invalid("num_ln_in_parallel_attn", $"must be 1 or 2, found {parallelNorms}", "Falcon has one shared norm or separate attention and MLP norms.");

        var t = new TensorList();
        t.Embedding("transformer.word_embeddings.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"transformer.h.{i}.";
            if (!parallel)
            {
                t.Norm(p + "input_layernorm", hidden, true, i);
                t.Norm(p + "post_attention_layernorm", hidden, true, i);
            }
            else if (parallelNorms == 2)
            {
                t.Norm(p + "ln_attn", hidden, true, i);
                t.Norm(p + "ln_mlp", hidden, true, i);
            }
            else
            {
                t.Norm(p + "input_layernorm", hidden, true, i);
            }
            t.Linear(p + "self_attention.query_key_value", qkv, hidden, bias, TensorRole.AttnQkv, i);
            t.Linear(p + "self_attention.dense", hidden, hidden, bias, TensorRole.AttnOut, i);
            t.Linear(p + "mlp.dense_h_to_4h", inter, hidden, bias, TensorRole.MlpUp, i);
            t.Linear(p + "mlp.dense_4h_to_h", hidden, inter, bias, TensorRole.MlpDown, i);
        }
        t.Norm("transformer.ln_f", hidden, true);
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
            Mlp = MlpKind.Plain,
            Activation = c.OptionalString("activation") ?? "gelu",
            Norm = NormKind.LayerNorm,
            NormBias = true,
            NormEpsilon = c.PositiveNumber("layer_norm_epsilon", 1e-5),
            NormsPerLayer = parallel ? parallelNorms : 2,
            ParallelResidual = parallel,
            Positions = alibi ? PositionKind.Alibi : PositionKind.Rotary,
            RopeTheta = c.PositiveNumber("rope_theta", 10000.0),
            RopeScaling = RopeScaling.Read(c),
            PartialRotaryFactor = alibi ? 0 : 1,
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 2048,
            TiedEmbeddings = tied,
            QkvBias = bias,
            AttentionOutBias = bias,
            MlpBias = bias,
            AttentionDropout = c.Probability("attention_dropout", 0),
            ResidualDropout = c.Probability("hidden_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "transformer.",
            Tensors = t.Tensors,
        };
    }
}
