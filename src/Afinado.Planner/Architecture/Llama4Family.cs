using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// Llama 4 (transformers models/llama4: modeling_llama4.py, configuration_llama4.py). <c>llama4_text</c> is
/// <c>Llama4ForCausalLM</c>; <c>llama4</c> is <c>Llama4ForConditionalGeneration</c>, which nests that decoder as
/// <c>language_model</c> beside a <c>vision_model</c> (<see cref="Llama4VisionTower"/>) and a bias-free
/// <c>multi_modal_projector.linear_1</c> [text hidden, vision_output_dim].
/// <para>A decoder layer: RMSNorm, attention without biases (q/k/v/o; the L2 q/k norm on RoPE layers has no weights),
/// RMSNorm, then a feed-forward that is an MoE block on the layers of <c>moe_layers</c> (default every
/// <c>interleave_moe_layer_step</c>-th, from index step − 1) and a gated MLP of <c>intermediate_size_mlp</c> elsewhere.
/// The MoE block (<c>Llama4TextMoe</c>): a bias-free router <c>feed_forward.router</c> [E, hidden] (an nn.Linear
/// subclass), every expert stacked in two parameters, <c>experts.gate_up_proj</c> [E, hidden, 2·I] and
/// <c>experts.down_proj</c> [E, I, hidden] (I = <c>intermediate_size</c>), and a shared expert, a gated MLP of width I that
/// every token runs.</para>
/// <para>Its forward runs every expert over every token: <c>hidden_states.repeat(E, 1)</c> scaled by the sigmoid of the
/// top-k scores (−∞ elsewhere), then two <c>torch.bmm</c> over all E experts (<see cref="ModelArchitecture.MoeRunsEveryExpert"/>),
/// unless a hub kernel replaces the module (<c>use_kernel_forward_from_hub</c>, not modelled).</para>
/// <para>Attention: layers with RoPE (<c>no_rope_layers[i] = 1</c>, default all but every <c>no_rope_layer_interval</c>-th)
/// are <c>chunked_attention</c> over <c>attention_chunk_size</c> tokens, the NoPE layers <c>full_attention</c>
/// (<c>layer_types</c> when the config lists it). transformers' DynamicCache gives chunked layers the same
/// DynamicSlidingWindowLayer as sliding ones, with <c>attention_chunk_size</c> as the window (cache_utils.py: "from a cache
/// point of view, both sliding and chunked are the same").</para>
/// </summary>
internal static class Llama4Family
{
    private const string Chunked = "chunked_attention";
    private const string Full = "full_attention";

    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        if (modelType == "llama4_text") return Text(c, modelType, "model.", "lm_head");
        var textConfig = c.Section("text_config", "llama4", "the text model and the vision model");
        var visionConfig = c.Section("vision_config", "llama4", "the text model and the vision model");
        if (textConfig.OptionalString("model_type") is { } tt && tt != "llama4_text")
            throw c.Invalid("text_config.model_type", $"is \"{tt}\", expected \"llama4_text\"", "Restore the value from the model's original config.json.");
        if (visionConfig.OptionalString("model_type") is { } vt && vt != "llama4_vision_model")
            throw c.Invalid("vision_config.model_type", $"is \"{vt}\", expected \"llama4_vision_model\"", "Restore the value from the model's original config.json.");
        // The hub checkpoints name the decoder language_model.model.* and its head language_model.lm_head.
        var text = Text(textConfig, modelType, "language_model.model.", "language_model.lm_head");
        var t = new TensorList();
        Llama4VisionTower.Add(t, visionConfig, "vision_model.");
        long visionOut = visionConfig.OptionalDim("vision_output_dim") ?? 7680;
        // Llama4MultiModalProjector: nn.Linear(vision_output_dim, text hidden_size, bias=False).
        t.VisionLinear("multi_modal_projector.linear_1", text.HiddenSize, visionOut, bias: false);
        t.AddRange(text.Tensors);
        return text with { Tensors = t.Tensors, Vision = Encoder(visionConfig, visionOut) };
    }

    /// <summary>
    /// The vision model as an image's memory sees it (Llama4VisionConfig's defaults). Its image inputs are planned when
    /// the pixel shuffle's width is the adapter's input (hidden ÷ ratio² = intermediate_size, as Llama4VisionMLP2's fc1
    /// requires) and the adapter's output is the projector's input; a config that breaks either could not run.
    /// </summary>
    private static VisionEncoder? Encoder(ConfigFields v, long visionOut)
    {
        long h = v.OptionalDim("hidden_size") ?? 768, inter = v.OptionalDim("intermediate_size") ?? 5632;
        int tile = v.OptionalDim("image_size") ?? 448, patch = v.OptionalDim("patch_size") ?? 14;
        double ratio = v.Fraction("pixel_shuffle_ratio", 0.5);
        long projectorOut = v.OptionalDim("projector_output_dim") ?? 4096;
        // Llama4Processor: downsample_ratio = round(1 / ratio²); tokens per tile = (tile / patch)² // downsample_ratio.
        int downsample = (int)Math.Round(1 / (ratio * ratio));
        long side = tile / patch;
        if (Math.Abs(h / (ratio * ratio) - inter) > 1e-9 || projectorOut != visionOut || side * side % downsample != 0) return null;
        return new VisionEncoder
        {
            Kind = VisionEncoderKind.Llama4,
            Depth = v.Has("num_hidden_layers") ? v.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers") : 34,
            HiddenSize = h,
            IntermediateSize = inter,
            Heads = v.OptionalDim("num_attention_heads") ?? 16,
            PatchSize = patch,
            Channels = v.OptionalDim("num_channels") ?? 3,
            ImageSize = tile,
            TokensPerTile = checked((int)(side * side / downsample)),
        };
    }

    private static ModelArchitecture Text(ConfigFields c, string modelType, string prefix, string head)
    {
        // Llama4TextConfig's defaults are Llama-4-Scout's widths; a hub config names them all.
        int hidden = c.OptionalDim("hidden_size") ?? 5120;
        int layers = c.Has("num_hidden_layers") ? c.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers") : 48;
        int heads = c.OptionalDim("num_attention_heads") ?? 40;
        int kvHeads = c.OptionalDim("num_key_value_heads") ?? heads;
        int vocab = c.OptionalDim("vocab_size") ?? 202048;
        int expertWidth = c.OptionalDim("intermediate_size") ?? 8192;
        int denseWidth = c.OptionalDim("intermediate_size_mlp") ?? 16384;
        int headDim = c.OptionalDim("head_dim") ?? LlamaFamily.DivideHidden(c, hidden, heads);
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        int qWidth = ArchitectureLimits.Width(c, "num_attention_heads × head_dim", (long)heads * headDim);
        int kvWidth = ArchitectureLimits.Width(c, "num_key_value_heads × head_dim", (long)kvHeads * headDim);
        int gateUp = ArchitectureLimits.Width(c, "2 × intermediate_size", 2L * expertWidth);

        int experts = c.Bounded("num_local_experts", 16, 1, ArchitectureLimits.MaxExperts);
        int perToken = c.Bounded("num_experts_per_tok", 1, 1, ArchitectureLimits.MaxExperts);
        if (perToken > experts)
            throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds num_local_experts {experts}", "A token cannot be routed to more experts than exist.");
        var moeLayers = MoeLayers(c, layers);
        if ((long)moeLayers.Count * experts > ArchitectureLimits.MaxExpertMlps)
            throw c.Invalid("num_local_experts", $"{experts} experts × {moeLayers.Count} MoE layers is beyond any real model", "Check config.json for a typo.");
        bool bias = c.Bool("attention_bias", false);
        bool tied = c.Bool("tie_word_embeddings", false);
        bool[] rope = RopeLayers(c, layers);
        bool[] chunked = c.Element("layer_types") is { } types ? LayerTypeList(c, types, layers) : rope;
        // No chunk size: a chunked layer's cache and mask span the whole sequence, as a full layer's.
        int? chunk = c.OptionalDim("attention_chunk_size") ?? (c.Has("attention_chunk_size") ? null : 8192);

        var t = new TensorList();
        t.Embedding(prefix + "embed_tokens.weight", vocab, hidden, TensorRole.TokenEmbedding);
        for (int i = 0; i < layers; i++)
        {
            string p = $"{prefix}layers.{i}.";
            t.Linear(p + "self_attn.q_proj", qWidth, hidden, bias, TensorRole.AttnQ, i);
            t.Linear(p + "self_attn.k_proj", kvWidth, hidden, bias, TensorRole.AttnK, i);
            t.Linear(p + "self_attn.v_proj", kvWidth, hidden, bias, TensorRole.AttnV, i);
            t.Linear(p + "self_attn.o_proj", hidden, qWidth, bias, TensorRole.AttnOut, i);
            string f = p + "feed_forward.";
            if (moeLayers.Contains(i))
            {
                t.Add(new ParameterTensor(f + "experts.gate_up_proj", [experts, hidden, gateUp], TensorRole.MlpGateUp, i) { StackedExperts = experts });
                t.Add(new ParameterTensor(f + "experts.down_proj", [experts, expertWidth, hidden], TensorRole.MlpDown, i) { StackedExperts = experts });
                t.Linear(f + "router", experts, hidden, false, TensorRole.Router, i);
                // The shared expert carries no expert index: every token runs it.
                t.Linear(f + "shared_expert.gate_proj", expertWidth, hidden, false, TensorRole.MlpGate, i);
                t.Linear(f + "shared_expert.up_proj", expertWidth, hidden, false, TensorRole.MlpUp, i);
                t.Linear(f + "shared_expert.down_proj", hidden, expertWidth, false, TensorRole.MlpDown, i);
            }
            else
            {
                t.Linear(f + "gate_proj", denseWidth, hidden, false, TensorRole.MlpGate, i);
                t.Linear(f + "up_proj", denseWidth, hidden, false, TensorRole.MlpUp, i);
                t.Linear(f + "down_proj", hidden, denseWidth, false, TensorRole.MlpDown, i);
            }
            t.Norm(p + "input_layernorm", hidden, false, i);
            t.Norm(p + "post_attention_layernorm", hidden, false, i);
        }
        t.Norm(prefix + "norm", hidden, false);
        if (!tied) t.Linear(head, vocab, hidden, false, TensorRole.LmHead);

        bool anyMoe = moeLayers.Count > 0, anyDense = moeLayers.Count < layers;
        return new ModelArchitecture
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            // The dense layers' width; the experts' is ExpertIntermediateSize.
            IntermediateSize = denseWidth,
            Mlp = MlpKind.Gated,
            Activation = c.OptionalString("hidden_act") ?? "silu",
            Norm = NormKind.RmsNorm,
            NormEpsilon = c.PositiveNumber("rms_norm_eps", 1e-5),
            Positions = PositionKind.Rotary,
            RopeTheta = c.PositiveNumber("rope_theta", 500000.0),
            RopeScaling = RopeScaling.Read(c),
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings") ?? 131072,
            TiedEmbeddings = tied,
            QkvBias = bias,
            AttentionOutBias = bias,
            // Llama4TextL2Norm has no weight, but it upcasts q and k to fp32 (saved for backward) as an RMSNorm does; the
            // NoPE layers (RopeLayers) skip it.
            QkNorm = c.Bool("use_qk_norm", true),
            RopeLayers = rope,
            Llama4Attention = true,
            AttentionTemperatureTuning = TemperatureTuning(c),
            NumExperts = anyMoe ? experts : 0,
            ExpertsPerToken = anyMoe ? perToken : 0,
            ExpertIntermediateSize = anyMoe ? expertWidth : null,
            UnroutedMlpWidth = anyMoe ? Math.Max(expertWidth, anyDense ? denseWidth : 0) : 0,
            MoeRunsEveryExpert = anyMoe,
            MoeLoop = anyMoe ? MoeTrainingLoop.Llama4 : MoeTrainingLoop.Other,
            RouterCall = RouterCall.ReturnsTuple,
            SlidingWindow = chunk is not null && chunked.Any(x => x) ? chunk : null,
            SlidingLayers = chunk is not null && chunked.Any(x => x) ? chunked : null,
            AttentionDropout = c.Probability("attention_dropout", 0),
            InitializerRange = c.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = prefix,
            Tensors = t.Tensors,
        };
    }

    /// <summary><c>moe_layers</c> when the config lists it (an empty list is a dense model), else Llama4TextConfig's
    /// <c>range(interleave_moe_layer_step − 1, num_hidden_layers, interleave_moe_layer_step)</c>.</summary>
    private static IReadOnlySet<int> MoeLayers(ConfigFields c, int layers)
    {
        if (c.Has("moe_layers")) return c.LayerIndices("moe_layers", layers);
        int step = c.Bounded("interleave_moe_layer_step", 1, 1, ArchitectureLimits.MaxLayers);
        var set = new HashSet<int>();
        for (int i = step - 1; i < layers; i += step) set.Add(i);
        return set;
    }

    /// <summary><c>attn_temperature_tuning</c>: Llama4TextConfig's default is on; hub configs write a bool or a number (Scout's
    /// 4), which Python reads as true unless 0.</summary>
    private static bool TemperatureTuning(ConfigFields c) => c.Element("attn_temperature_tuning") switch
    {
        null => true,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { ValueKind: JsonValueKind.Number } n => n.GetDouble() != 0,
        _ => throw c.Invalid("attn_temperature_tuning", "must be true, false or a number", "Restore the value from the model's original config.json."),
    };

    /// <summary>Per layer, true where it applies RoPE (and, without <c>layer_types</c>, attends in chunks): <c>no_rope_layers</c>
    /// (1 = RoPE; an absent or empty list means all but every <c>no_rope_layer_interval</c>-th).</summary>
    private static bool[] RopeLayers(ConfigFields c, int layers)
    {
        var rope = new bool[layers];
        var listed = c.Element("no_rope_layers");
        if (listed is { ValueKind: JsonValueKind.Array } list && list.GetArrayLength() > 0)
        {
            // Llama4TextAttention reads no_rope_layers[layer_idx]: the list may be longer than the model, not shorter.
            if (list.GetArrayLength() < layers)
                throw c.Invalid("no_rope_layers", $"has {list.GetArrayLength()} entries but num_hidden_layers is {layers}", "List a 1 (RoPE) or 0 (NoPE) for every decoder layer.");
            int i = 0;
            foreach (var e in list.EnumerateArray())
            {
                if (i == layers) break;
                rope[i] = e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) && v is 0 or 1
                    ? v == 1
                    : throw c.Invalid("no_rope_layers", $"entry {i} is not 0 or 1", "Restore the value from the model's original config.json.");
                i++;
            }
            return rope;
        }
        if (listed is { ValueKind: not (JsonValueKind.Array or JsonValueKind.Null) })
            throw c.Invalid("no_rope_layers", "must be a list of 0 and 1", "Restore the value from the model's original config.json.");
        int interval = c.Bounded("no_rope_layer_interval", 4, 1, ArchitectureLimits.MaxLayers);
        for (int i = 0; i < layers; i++) rope[i] = (i + 1) % interval != 0;
        return rope;
    }

    private static bool[] LayerTypeList(ConfigFields c, JsonElement list, int layers)
    {
        if (list.ValueKind != JsonValueKind.Array)
            throw c.Invalid("layer_types", $"must be a list of \"{Chunked}\" / \"{Full}\"", "Restore the value from the model's original config.json, or remove it to derive it from no_rope_layers.");
        if (list.GetArrayLength() != layers)
            throw c.Invalid("layer_types", $"has {list.GetArrayLength()} entries but num_hidden_layers is {layers}", "List one attention type per decoder layer.");
        var chunked = new bool[layers];
        int i = 0;
        foreach (var e in list.EnumerateArray())
        {
            chunked[i] = (e.ValueKind == JsonValueKind.String ? e.GetString() : null) switch
            {
                Chunked => true,
                Full => false,
                _ => throw c.Invalid("layer_types", $"entry {i} is not \"{Chunked}\" or \"{Full}\"", "Restore the value from the model's original config.json."),
            };
            i++;
        }
        return chunked;
    }
}
