namespace Afinado.Planner.Architecture;

/// <summary>
/// GPT-BigCode (SantaCoder, StarCoder, OctoCoder; transformers <c>GPTBigCodeForCausalLM</c>): GPT-2's layout and names but
/// with <c>nn.Linear</c> ([out, in]) projections and multi-query attention (one shared K/V head) when <c>multi_query</c>.
/// </summary>
internal static class GptBigCodeFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        int hidden = c.Dim("n_embd", "hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "n_layer", "num_hidden_layers");
        int heads = c.Dim("n_head", "num_attention_heads");
        int vocab = c.Dim("vocab_size");
        int positions = c.Dim("n_positions", "max_position_embeddings");
        int inner = c.OptionalDim("n_inner") ?? ArchitectureLimits.Width(c, "4 × n_embd", 4L * hidden);
        int headDim = LlamaFamily.DivideHidden(c, hidden, heads);
        bool multiQuery = c.Bool("multi_query", true);
        int kvHeads = multiQuery ? 1 : heads;
        int qkv = ArchitectureLimits.Width(c, "n_embd + 2 × kv width", hidden + 2L * kvHeads * headDim);
        bool tied = c.Bool("tie_word_embeddings", true);

        var t = new TensorList();
        t.Embedding("transformer.wte.weight", vocab, hidden, TensorRole.TokenEmbedding);
        t.Embedding("transformer.wpe.weight", positions, hidden, TensorRole.PositionEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"transformer.h.{i}.";
            t.Norm(p + "ln_1", hidden, true, i);
            t.Linear(p + "attn.c_attn", qkv, hidden, true, TensorRole.AttnQkv, i);
            t.Linear(p + "attn.c_proj", hidden, hidden, true, TensorRole.AttnOut, i);
            t.Norm(p + "ln_2", hidden, true, i);
            t.Linear(p + "mlp.c_fc", inner, hidden, true, TensorRole.MlpUp, i);
            t.Linear(p + "mlp.c_proj", hidden, inner, true, TensorRole.MlpDown, i);
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
            IntermediateSize = inner,
            Mlp = MlpKind.Plain,
            Activation = c.OptionalString("activation_function") ?? "gelu_pytorch_tanh",
            Norm = NormKind.LayerNorm,
            NormBias = true,
            NormEpsilon = c.PositiveNumber("layer_norm_epsilon", 1e-5),
            Positions = PositionKind.Learned,
            PartialRotaryFactor = 0,
            MaxPositionEmbeddings = positions,
            TiedEmbeddings = tied,
            QkvBias = true,
            AttentionOutBias = true,
            MlpBias = true,
            AttentionDropout = c.Probability("attn_pdrop", 0.1),
            ResidualDropout = c.Probability("resid_pdrop", 0.1),
            EmbeddingDropout = c.Probability("embd_pdrop", 0.1),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = "transformer.",
            Tensors = t.Tensors,
        };
    }
}
