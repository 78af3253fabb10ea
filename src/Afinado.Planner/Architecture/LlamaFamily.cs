namespace Afinado.Planner.Architecture;

/// <summary>
/// Llama-style decoders: RMSNorm, RoPE, GQA, SwiGLU, optional q/k/v bias (Qwen2), q/k norms (Qwen3), MoE (Mixtral).
/// Tensor names follow transformers' LlamaForCausalLM / MixtralForCausalLM.
/// </summary>
internal static class LlamaFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        int hidden = c.Dim("hidden_size");
        int layers = c.Dim("num_hidden_layers");
        int heads = c.Dim("num_attention_heads");
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? heads;
        int vocab = c.Dim("vocab_size");
        int inter = c.Dim("intermediate_size");
        int headDim = c.OptionalDim("head_dim") ?? DivideHidden(c, hidden, heads);
        if (heads % kvHeads != 0)
            throw c.Invalid("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}", "Grouped-query attention needs heads to be a multiple of key/value heads.");
        bool qwen2 = modelType == "qwen2";
        bool qwen3 = modelType == "qwen3";
        bool moe = modelType == "mixtral";
        int experts = moe ? c.Dim("num_local_experts") : 0;
        int perToken = moe ? c.Dim("num_experts_per_tok") : 0;
        if (moe && perToken > experts)
            throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds num_local_experts {experts}", "A token cannot be routed to more experts than exist.");
        bool qkvBias = qwen2 || c.Bool("attention_bias", false);
        bool mlpBias = c.Bool("mlp_bias", false);
        bool tied = c.Bool("tie_word_embeddings", false);

        var t = new List<ParameterTensor>();
        t.Add(new("model.embed_tokens.weight", [vocab, hidden], TensorRole.TokenEmbedding));
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t.Add(new(p + "input_layernorm.weight", [hidden], TensorRole.Norm, i));
            t.Add(new(p + "self_attn.q_proj.weight", [heads * headDim, hidden], TensorRole.AttnQ, i));
            if (qkvBias) t.Add(new(p + "self_attn.q_proj.bias", [heads * headDim], TensorRole.AttnQ, i));
            t.Add(new(p + "self_attn.k_proj.weight", [kvHeads * headDim, hidden], TensorRole.AttnK, i));
            if (qkvBias) t.Add(new(p + "self_attn.k_proj.bias", [kvHeads * headDim], TensorRole.AttnK, i));
            t.Add(new(p + "self_attn.v_proj.weight", [kvHeads * headDim, hidden], TensorRole.AttnV, i));
            if (qkvBias) t.Add(new(p + "self_attn.v_proj.bias", [kvHeads * headDim], TensorRole.AttnV, i));
            t.Add(new(p + "self_attn.o_proj.weight", [hidden, heads * headDim], TensorRole.AttnOut, i));
            if (c.Bool("attention_bias", false)) t.Add(new(p + "self_attn.o_proj.bias", [hidden], TensorRole.AttnOut, i));
            if (qwen3)
            {
                t.Add(new(p + "self_attn.q_norm.weight", [headDim], TensorRole.Norm, i));
                t.Add(new(p + "self_attn.k_norm.weight", [headDim], TensorRole.Norm, i));
            }
            t.Add(new(p + "post_attention_layernorm.weight", [hidden], TensorRole.Norm, i));
            if (moe)
            {
                t.Add(new(p + "block_sparse_moe.gate.weight", [experts, hidden], TensorRole.Router, i));
                for (int e = 0; e < experts; e++)
                {
                    string x = $"{p}block_sparse_moe.experts.{e}.";
                    t.Add(new(x + "w1.weight", [inter, hidden], TensorRole.MlpGate, i, e));
                    t.Add(new(x + "w2.weight", [hidden, inter], TensorRole.MlpDown, i, e));
                    t.Add(new(x + "w3.weight", [inter, hidden], TensorRole.MlpUp, i, e));
                }
            }
            else
            {
                t.Add(new(p + "mlp.gate_proj.weight", [inter, hidden], TensorRole.MlpGate, i));
                if (mlpBias) t.Add(new(p + "mlp.gate_proj.bias", [inter], TensorRole.MlpGate, i));
                t.Add(new(p + "mlp.up_proj.weight", [inter, hidden], TensorRole.MlpUp, i));
                if (mlpBias) t.Add(new(p + "mlp.up_proj.bias", [inter], TensorRole.MlpUp, i));
                t.Add(new(p + "mlp.down_proj.weight", [hidden, inter], TensorRole.MlpDown, i));
                if (mlpBias) t.Add(new(p + "mlp.down_proj.bias", [hidden], TensorRole.MlpDown, i));
            }
        }
        t.Add(new("model.norm.weight", [hidden], TensorRole.Norm));
        if (!tied) t.Add(new("lm_head.weight", [vocab, hidden], TensorRole.LmHead));

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
            NormEpsilon = c.Number("rms_norm_eps", 1e-6),
            Positions = PositionKind.Rotary,
            RopeTheta = c.Number("rope_theta", 10000.0),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 2048,
            TiedEmbeddings = tied,
            QkvBias = qkvBias,
            AttentionOutBias = c.Bool("attention_bias", false),
            MlpBias = mlpBias,
            QkNorm = qwen3,
            NumExperts = experts,
            ExpertsPerToken = perToken,
            SlidingWindow = c.Bool("use_sliding_window", modelType == "mistral" || modelType == "mixtral") ? c.OptionalDim("sliding_window") : null,
            Tensors = t,
        };
    }

    internal static int DivideHidden(ConfigFields c, int hidden, int heads)
    {
        if (hidden % heads != 0)
            throw c.Invalid("num_attention_heads", $"{heads} does not divide hidden_size {hidden}", "Set head_dim explicitly or fix num_attention_heads.");
        return hidden / heads;
    }
}
