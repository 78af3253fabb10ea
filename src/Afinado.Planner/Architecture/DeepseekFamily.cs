using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// DeepSeek-V2 / V3 (transformers models/deepseek_v2 and deepseek_v3, and the checkpoints' own modeling_deepseek.py, whose
/// tensor names the hub files carry). Multi-head latent attention (MLA): queries through a low-rank
/// <c>q_a_proj</c> → <c>q_a_layernorm</c> → <c>q_b_proj</c> (or one <c>q_proj</c> when q_lora_rank is null), keys and values
/// through <c>kv_a_proj_with_mqa</c> [kv_lora_rank + qk_rope_head_dim, hidden] → <c>kv_a_layernorm</c> → <c>kv_b_proj</c>
/// [heads · (qk_nope_head_dim + v_head_dim), kv_lora_rank], then <c>o_proj</c> [hidden, heads · v_head_dim]. The first
/// <c>first_k_dense_replace</c> layers have a dense MLP; the rest route each token to num_experts_per_tok of
/// n_routed_experts experts (<c>mlp.experts.{j}.gate_proj/up_proj/down_proj</c>, moe_intermediate_size wide) through
/// <c>mlp.gate</c> (V3 adds its <c>e_score_correction_bias</c>) plus <c>mlp.shared_experts</c>
/// (moe_intermediate_size · n_shared_experts wide). The multi-token-prediction layer a V3 checkpoint also holds
/// (<c>model.layers.{num_hidden_layers}.*</c>) is not loaded by transformers (<c>_keys_to_ignore_on_load_unexpected</c>)
/// and is not counted.
/// </summary>
internal static class DeepseekFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        bool v3 = modelType == "deepseek_v3";
        int hidden = c.Dim("hidden_size");
        int layers = c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = c.Dim("num_attention_heads");
        int vocab = c.Dim("vocab_size");
        int inter = c.Dim("intermediate_size");
        int? qRank = c.OptionalDim("q_lora_rank");
        int kvRank = c.Dim("kv_lora_rank");
        int nope = c.Dim("qk_nope_head_dim");
        int rope = c.Dim("qk_rope_head_dim");
        int vHead = c.Dim("v_head_dim");
        int qkHead = nope + rope;
        int qWidth = ArchitectureLimits.Width(c, "num_attention_heads × (qk_nope_head_dim + qk_rope_head_dim)", (long)heads * qkHead);
        int kvbWidth = ArchitectureLimits.Width(c, "num_attention_heads × (qk_nope_head_dim + v_head_dim)", (long)heads * (nope + vHead));
        int oWidth = ArchitectureLimits.Width(c, "num_attention_heads × v_head_dim", (long)heads * vHead);

        int experts = c.OptionalDim("n_routed_experts") ?? 0;
        int perToken = experts > 0 ? c.Dim("num_experts_per_tok") : 0;
        if (perToken > experts)
            throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds n_routed_experts {experts}", "A token cannot be routed to more experts than exist.");
        if ((long)layers * experts > ArchitectureLimits.MaxExpertMlps)
            throw c.Invalid("n_routed_experts", $"{experts} experts × {layers} layers is beyond any real model", "Check config.json for a typo.");
        int moeInter = experts > 0 ? c.Dim("moe_intermediate_size") : 0;
        int shared = experts > 0 ? c.Bounded("n_shared_experts", 0, 0, ArchitectureLimits.MaxExperts) : 0;
        int sharedWidth = ArchitectureLimits.Width(c, "moe_intermediate_size × n_shared_experts", (long)moeInter * shared);
        int firstDense = c.Bounded("first_k_dense_replace", 0, 0, int.MaxValue);
        // DeepseekV3Config's n_group and topk_group default to 1 (V2's to 1 too): the router's expert groups.
        int groups = experts > 0 ? c.Bounded("n_group", 1, 1, experts) : 1;
        int topGroups = experts > 0 ? c.Bounded("topk_group", 1, 1, groups) : 1;
        if (experts > 0 && experts % groups != 0)
            throw c.Invalid("n_group", $"{groups} does not divide n_routed_experts {experts}", "The router views the experts as n_group equal groups; restore the model's original value.");
        int freq = c.Bounded("moe_layer_freq", 1, 1, ArchitectureLimits.MaxLayers);
        // V3's noaux_tc routing adds a per-expert bias to the scores (a buffer kept in fp32, saved in the checkpoint).
        bool correctionBias = v3 || c.OptionalString("topk_method") == "noaux_tc";
        bool attnBias = c.Bool("attention_bias", false);
        bool tied = c.Bool("tie_word_embeddings", false);
        bool Sparse(int layer) => experts > 0 && layer >= firstDense && layer % freq == 0;

        var t = new TensorList();
        t.Embedding("model.embed_tokens.weight", vocab, hidden, TensorRole.TokenEmbedding);
        int sparseLayers = 0;
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            t.Norm(p + "input_layernorm", hidden, false, i);
            if (qRank is { } qr)
            {
                t.Linear(p + "self_attn.q_a_proj", qr, hidden, attnBias, TensorRole.AttnQ, i);
                t.Norm(p + "self_attn.q_a_layernorm", qr, false, i);
                t.Linear(p + "self_attn.q_b_proj", qWidth, qr, false, TensorRole.AttnQ, i);
            }
            else t.Linear(p + "self_attn.q_proj", qWidth, hidden, false, TensorRole.AttnQ, i);
            t.Linear(p + "self_attn.kv_a_proj_with_mqa", kvRank + rope, hidden, attnBias, TensorRole.AttnK, i);
            t.Norm(p + "self_attn.kv_a_layernorm", kvRank, false, i);
            t.Linear(p + "self_attn.kv_b_proj", kvbWidth, kvRank, false, TensorRole.AttnV, i);
            t.Linear(p + "self_attn.o_proj", hidden, oWidth, attnBias, TensorRole.AttnOut, i);
            if (Sparse(i))
            {
                sparseLayers++;
                for (int j = 0; j < experts; j++)
                {
                    string e = $"{p}mlp.experts.{j}.";
                    t.Linear(e + "gate_proj", moeInter, hidden, false, TensorRole.MlpGate, i, j);
                    t.Linear(e + "up_proj", moeInter, hidden, false, TensorRole.MlpUp, i, j);
                    t.Linear(e + "down_proj", hidden, moeInter, false, TensorRole.MlpDown, i, j);
                }
                t.Linear(p + "mlp.gate", experts, hidden, false, TensorRole.Router, i);
                if (correctionBias) t.Add(new ParameterTensor(p + "mlp.gate.e_score_correction_bias", [experts], TensorRole.Router, i));
                if (shared > 0)
                {
                    t.Linear(p + "mlp.shared_experts.gate_proj", sharedWidth, hidden, false, TensorRole.MlpGate, i);
                    t.Linear(p + "mlp.shared_experts.up_proj", sharedWidth, hidden, false, TensorRole.MlpUp, i);
                    t.Linear(p + "mlp.shared_experts.down_proj", hidden, sharedWidth, false, TensorRole.MlpDown, i);
                }
            }
            else
            {
                t.Linear(p + "mlp.gate_proj", inter, hidden, false, TensorRole.MlpGate, i);
                t.Linear(p + "mlp.up_proj", inter, hidden, false, TensorRole.MlpUp, i);
                t.Linear(p + "mlp.down_proj", hidden, inter, false, TensorRole.MlpDown, i);
            }
            t.Norm(p + "post_attention_layernorm", hidden, false, i);
        }
        t.Norm("model.norm", hidden, false);
        if (!tied) t.Linear("lm_head", vocab, hidden, false, TensorRole.LmHead);

        bool moe = sparseLayers > 0;
        var fp8Block = Fp8Block(c);
        return new ModelArchitecture
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            // transformers' DeepseekV2/V3 attention caches the expanded per-head keys (nope + rope) and values, not the
            // compressed latent (kv_lora_rank + qk_rope_head_dim per token) that MLA kernels in vLLM or SGLang keep.
            NumKvHeads = heads,
            HeadDim = qkHead,
            ValueHeadDim = vHead,
            Mla = new LatentAttention(qRank, kvRank, nope, rope, vHead),
            IntermediateSize = inter,
            Mlp = MlpKind.Gated,
            Activation = c.OptionalString("hidden_act") ?? "silu",
            Norm = NormKind.RmsNorm,
            NormEpsilon = c.PositiveNumber("rms_norm_eps", 1e-6),
            Positions = PositionKind.Rotary,
            PartialRotaryFactor = (double)rope / qkHead,
            RopeTheta = c.PositiveNumber("rope_theta", 10000.0),
            RopeScaling = RopeScaling.Read(c),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 4096,
            TiedEmbeddings = tied,
            AttentionOutBias = attnBias,
            NumExperts = moe ? experts : 0,
            ExpertsPerToken = moe ? perToken : 0,
            ExpertIntermediateSize = moe ? moeInter : null,
            // Every token runs the shared experts, and the dense layers' MLP in full.
            UnroutedMlpWidth = moe ? Math.Max(sharedWidth, firstDense > 0 || freq > 1 ? inter : 0) : 0,
            // DeepseekV2Moe and DeepseekV3MoE (transformers 5) share the fp32 router linear and the stacked experts; V2
            // scores with a softmax and never renormalises, and its group_limited_greedy masks the scores (autograd keeps
            // the mask).
            MoeLoop = moe ? MoeTrainingLoop.DeepseekV3 : MoeTrainingLoop.Other,
            MoeGroupLimitedMask = moe && !v3 && c.OptionalString("topk_method") == "group_limited_greedy",
            MoeRouterGroups = groups,
            MoeRouterTopGroups = topGroups,
            MoeSigmoidScores = moe && v3,
            RoutedExpertsAreParameters = moe,
            // DeepseekV2Moe's gate is an nn.Linear; DeepseekV3TopkRouter holds its weight as a parameter.
            RouterIsLinearModule = !v3,
            RouterCall = v3 ? RouterCall.Module : RouterCall.WeightRead,
            // DeepseekV3Config's default: renormalise the top-k weights.
            MoeRenormalizesTopK = moe && v3 && c.Bool("norm_topk_prob", true),
            AttentionDropout = c.Probability("attention_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            CheckpointQuantMethod = fp8Block is null ? null : "fp8",
            Fp8WeightBlock = fp8Block,
            BaseModelPrefix = "model.",
            Tensors = t.Tensors,
        };
    }

    /// <summary><c>quantization_config</c> of the hub checkpoints: <c>quant_method</c> "fp8" with
    /// <c>weight_block_size</c> [128, 128]. Absent: a bf16 export. Anything else names the key.</summary>
    private static (int Rows, int Cols)? Fp8Block(ConfigFields c)
    {
        if (CheckpointQuantization.FamilyFormat(c, "fp8", "Use the hub checkpoint's config (fp8 with weight_block_size) or a bf16 export without quantization_config.") is not { } q)
            return null;
        if (!q.TryGetProperty("weight_block_size", out var b) || b.ValueKind != JsonValueKind.Array || b.GetArrayLength() != 2
            || !b[0].TryGetInt32(out int rows) || !b[1].TryGetInt32(out int cols) || rows < 1 || cols < 1)
            throw c.Invalid("quantization_config.weight_block_size", "must be two positive integers [rows, cols]", "Restore the value from the model's original config.json ([128, 128]).");
        return (rows, cols);
    }
}
