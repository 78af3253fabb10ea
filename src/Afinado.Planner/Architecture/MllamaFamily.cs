using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// <c>mllama</c>: Llama 3.2 Vision (transformers models/mllama, MllamaForConditionalGeneration), a Llama 3.1 decoder with
/// cross-attention layers inserted at <c>text_config.cross_attention_layers</c>, a two-stage vision encoder and a biased
/// projector [text hidden, vision_output_dim]. Hub checkpoint names: <c>language_model.model.*</c>,
/// <c>language_model.lm_head</c>, <c>vision_model.*</c>, <c>multi_modal_projector</c>.
/// <para>The text embedding has <c>vocab_size + 8</c> rows (MllamaTextModel adds the image and padding tokens); the head
/// has <c>vocab_size</c>. A cross-attention layer (MllamaCrossAttentionDecoderLayer) holds q/k/v/o, per-head RMSNorms
/// on q and k (head_dim wide), a tanh gate after attention and one after its gated MLP, and two RMSNorms.</para>
/// <para>A text-only step skips every cross-attention layer (MllamaTextModel.forward continues past a cross-attention
/// layer when there are no cross-attention states and no cached ones), so the planner sizes activations and the KV cache
/// over the self-attention layers only (<see cref="ModelArchitecture.NumLayers"/>): cross-attention tensors carry no
/// layer index. Their linears stay LoRA targets (PEFT adapts them; with no image they get no gradient). The image path —
/// vision activations, the image K/V the cross layers cache — is not planned.</para>
/// <para>The vision model (MllamaVisionModel): a bias-free patch convolution [hidden, channels, patch, patch], a class
/// embedding, gated position embeddings (per patch and per tile and aspect ratio), gated pre/post tile embeddings, biased
/// LayerNorms, <c>num_hidden_layers</c> local encoder layers (bias-free q/k/v/o, biased fc1/fc2, two LayerNorms) and
/// <c>num_global_layers</c> global ones with an attention and an MLP gate each.</para>
/// </summary>
internal static class MllamaFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        var text = c.Section("text_config", "mllama", "the text model and the vision model");
        var vision = c.Section("vision_config", "mllama", "the text model and the vision model");
        int hidden = text.Dim("hidden_size");
        int allLayers = text.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = text.Dim("num_attention_heads");
        int kvHeads = text.OptionalDim("num_key_value_heads") ?? heads;
        int vocab = text.Dim("vocab_size");
        int inter = text.Dim("intermediate_size");
        int headDim = LlamaFamily.DivideHidden(text, hidden, heads);
        LlamaFamily.CheckGroups(text, heads, kvHeads);
        var cross = text.LayerIndices("cross_attention_layers", allLayers);
        if (cross.Count == allLayers)
            throw text.Invalid("cross_attention_layers", "lists every layer, leaving no self-attention layer", "Restore the value from the model's original config.json.");
        long qWidth = (long)heads * headDim, kvWidth = (long)kvHeads * headDim;
        bool tied = c.Bool("tie_word_embeddings", text.Bool("tie_word_embeddings", false));

        var t = new TensorList();
        AddVision(t, vision, hidden);
        const string p = "language_model.model.";
        // MllamaTextModel: nn.Embedding(vocab_size + 8, hidden_size).
        t.Embedding(p + "embed_tokens.weight", vocab + 8L, hidden, TensorRole.TokenEmbedding);
        int self = 0;
        for (int i = 0; i < allLayers; i++)
        {
            string l = $"{p}layers.{i}.";
            if (cross.Contains(i))
            {
                // No layer index: a text-only step never runs this layer (see the class summary).
                t.Linear(l + "cross_attn.q_proj", qWidth, hidden, false, TensorRole.AttnQ);
                t.Linear(l + "cross_attn.k_proj", kvWidth, hidden, false, TensorRole.AttnK);
                t.Linear(l + "cross_attn.v_proj", kvWidth, hidden, false, TensorRole.AttnV);
                t.Linear(l + "cross_attn.o_proj", hidden, qWidth, false, TensorRole.AttnOut);
                t.Add(new ParameterTensor(l + "cross_attn.q_norm.weight", [headDim], TensorRole.Other));
                t.Add(new ParameterTensor(l + "cross_attn.k_norm.weight", [headDim], TensorRole.Other));
                t.Add(new ParameterTensor(l + "input_layernorm.weight", [hidden], TensorRole.Other));
                t.Add(new ParameterTensor(l + "cross_attn_attn_gate", [1], TensorRole.Other));
                t.Linear(l + "mlp.gate_proj", inter, hidden, false, TensorRole.MlpGate);
                t.Linear(l + "mlp.up_proj", inter, hidden, false, TensorRole.MlpUp);
                t.Linear(l + "mlp.down_proj", hidden, inter, false, TensorRole.MlpDown);
                t.Add(new ParameterTensor(l + "post_attention_layernorm.weight", [hidden], TensorRole.Other));
                t.Add(new ParameterTensor(l + "cross_attn_mlp_gate", [1], TensorRole.Other));
                continue;
            }
            t.Norm(l + "input_layernorm", hidden, false, self);
            t.Linear(l + "self_attn.q_proj", qWidth, hidden, false, TensorRole.AttnQ, self);
            t.Linear(l + "self_attn.k_proj", kvWidth, hidden, false, TensorRole.AttnK, self);
            t.Linear(l + "self_attn.v_proj", kvWidth, hidden, false, TensorRole.AttnV, self);
            t.Linear(l + "self_attn.o_proj", hidden, qWidth, false, TensorRole.AttnOut, self);
            t.Norm(l + "post_attention_layernorm", hidden, false, self);
            t.Linear(l + "mlp.gate_proj", inter, hidden, false, TensorRole.MlpGate, self);
            t.Linear(l + "mlp.up_proj", inter, hidden, false, TensorRole.MlpUp, self);
            t.Linear(l + "mlp.down_proj", hidden, inter, false, TensorRole.MlpDown, self);
            self++;
        }
        t.Norm(p + "norm", hidden, false);
        if (!tied) t.Linear("language_model.lm_head", vocab, hidden, false, TensorRole.LmHead);

        return new ModelArchitecture
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            NumLayers = self,
            CrossAttentionLayers = cross.Count,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            IntermediateSize = inter,
            Mlp = MlpKind.Gated,
            Activation = text.OptionalString("hidden_act") ?? "silu",
            Norm = NormKind.RmsNorm,
            NormEpsilon = text.PositiveNumber("rms_norm_eps", 1e-5),
            Positions = PositionKind.Rotary,
            RopeTheta = text.PositiveNumber("rope_theta", 500000.0),
            RopeScaling = RopeScaling.Read(text),
            MaxPositionEmbeddings = text.OptionalDim("max_position_embeddings") ?? 131072,
            TiedEmbeddings = tied,
            AttentionDropout = text.Probability("attention_dropout", 0),
            InitializerRange = text.PositiveNumber("initializer_range", 0.02),
            BaseModelPrefix = p,
            Tensors = t.Tensors,
        };
    }

    private static void AddVision(TensorList t, ConfigFields v, int textHidden)
    {
        long h = v.Dim("hidden_size");
        long inter = v.Dim("intermediate_size");
        int local = v.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int global = v.Has("num_global_layers") ? v.Count(ArchitectureLimits.MaxLayers, "num_global_layers") : 8;
        int heads = v.OptionalDim("attention_heads", "num_attention_heads") ?? 16;
        if (h % heads != 0)
            throw v.Invalid("attention_heads", $"{heads} does not divide hidden_size {h}", "Restore the value from the model's original config.json.");
        long channels = v.OptionalDim("num_channels") ?? 3;
        long image = v.Dim("image_size"), patch = v.Dim("patch_size");
        if (patch > image)
            throw v.Invalid("patch_size", $"{patch} exceeds image_size {image}, leaving no patches", "Restore the value from the model's original config.json.");
        long tiles = v.OptionalDim("max_num_tiles") ?? 4;
        // MllamaVisionConfig.max_aspect_ratio_id = len(supported_aspect_ratios); the embeddings have one more row.
        long ratios = v.Element("supported_aspect_ratios") is { ValueKind: JsonValueKind.Array } list ? list.GetArrayLength() : 8;
        long visionOut = v.OptionalDim("vision_output_dim") ?? 7680;
        long patches = checked((image / patch) * (image / patch) + 1);

        const string p = "vision_model.";
        t.Vision(p + "patch_embedding.weight", h, channels, patch, patch);
        t.Vision(p + "class_embedding", h);
        t.Vision(p + "gated_positional_embedding.embedding", patches, h);
        t.Vision(p + "gated_positional_embedding.gate", 1);
        t.Vision(p + "gated_positional_embedding.tile_embedding.weight", ratios + 1, checked(tiles * patches * h));
        foreach (var tile in new[] { "pre_tile_positional_embedding", "post_tile_positional_embedding" })
        {
            t.Vision($"{p}{tile}.embedding.weight", ratios + 1, tiles * h);
            t.Vision($"{p}{tile}.gate", 1);
        }
        t.VisionLayerNorm(p + "layernorm_pre", h);
        t.VisionLayerNorm(p + "layernorm_post", h);
        for (int i = 0; i < local + global; i++)
        {
            bool gated = i >= local;
            string l = gated ? $"{p}global_transformer.layers.{i - local}." : $"{p}transformer.layers.{i}.";
            // MllamaVisionAttention: nn.Linear(bias=False) for q, k, v and o.
            foreach (var m in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) t.VisionLinear($"{l}self_attn.{m}", h, h, bias: false);
            t.VisionLinear(l + "mlp.fc1", inter, h);
            t.VisionLinear(l + "mlp.fc2", h, inter);
            t.VisionLayerNorm(l + "input_layernorm", h);
            t.VisionLayerNorm(l + "post_attention_layernorm", h);
            if (!gated) continue;
            t.Vision(l + "gate_attn", 1);
            t.Vision(l + "gate_ffn", 1);
        }
        // MllamaForConditionalGeneration: nn.Linear(vision_output_dim, text hidden_size, bias=True).
        t.VisionLinear("multi_modal_projector", textHidden, visionOut);
    }
}
