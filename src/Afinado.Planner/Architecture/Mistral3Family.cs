using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// <c>mistral3</c>: Mistral Small 3.1 / 3.2 (transformers models/mistral3, Mistral3ForConditionalGeneration). The text
/// model is a mistral decoder (<c>text_config</c>) named <c>language_model.model.*</c> and <c>language_model.lm_head</c> in
/// the hub checkpoints; the vision tower is Pixtral's (models/pixtral: a bias-free patch Conv2d [hidden, channels, patch,
/// patch], an RMSNorm <c>ln_pre</c>, layers of RMSNorm <c>attention_norm</c>, bias-free q/k/v/o, RMSNorm <c>ffn_norm</c> and
/// a bias-free gated MLP); the projector (Mistral3MultiModalProjector) holds an RMSNorm over the vision width, the patch
/// merger's bias-free <c>merging_layer</c> [vision hidden, vision hidden · m²], <c>linear_1</c> [text hidden, vision hidden]
/// and <c>linear_2</c> [text hidden, text hidden], biased when <c>multimodal_projector_bias</c>. Vision weights are frozen
/// memory here; a text step runs no image (image activations not planned).
/// </summary>
internal static class Mistral3Family
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        var textConfig = c.Section("text_config", "mistral3", "the text model and the vision tower");
        var vision = c.Section("vision_config", "mistral3", "the text model and the vision tower");
        if (textConfig.OptionalString("model_type") is { } tt && tt != "mistral")
            throw c.Invalid("text_config.model_type", $"is \"{tt}\", expected \"mistral\"", "Restore the value from the model's original config.json.");
        if (vision.OptionalString("model_type") is { } vt && vt != "pixtral")
            throw c.Invalid("vision_config.model_type", $"is \"{vt}\", expected \"pixtral\"", "Restore the value from the model's original config.json.");
        // vision_feature_layer may list several layers whose features are concatenated before linear_1.
        int featureLayers = c.Element("vision_feature_layer") is { ValueKind: JsonValueKind.Array } layers ? layers.GetArrayLength() : 1;
        if (featureLayers == 0)
            throw c.Invalid("vision_feature_layer", "is an empty list", "Restore the value from the model's original config.json.");
        var text = LlamaFamily.Build(textConfig, "mistral");

        var t = new TensorList();
        long h = vision.Dim("hidden_size");
        long inter = vision.Dim("intermediate_size");
        int depth = vision.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers");
        int heads = vision.Dim("num_attention_heads");
        long headDim = vision.OptionalDim("head_dim") ?? (h % heads == 0 ? h / heads
            : throw vision.Invalid("num_attention_heads", $"{heads} does not divide hidden_size {h}", "Set head_dim or fix num_attention_heads."));
        long channels = vision.OptionalDim("num_channels") ?? 3;
        long patch = vision.Dim("patch_size");
        long merge = c.OptionalDim("spatial_merge_size") ?? 2;
        bool projectorBias = c.Bool("multimodal_projector_bias", true);

        const string v = "vision_tower.";
        t.Vision(v + "patch_conv.weight", h, channels, patch, patch);
        t.Vision(v + "ln_pre.weight", h);
        for (int i = 0; i < depth; i++)
        {
            string p = $"{v}transformer.layers.{i}.";
            t.Vision(p + "attention_norm.weight", h);
            // PixtralMLP and PixtralAttention: nn.Linear(bias=False) throughout.
            t.VisionLinear(p + "feed_forward.gate_proj", inter, h, bias: false);
            t.VisionLinear(p + "feed_forward.up_proj", inter, h, bias: false);
            t.VisionLinear(p + "feed_forward.down_proj", h, inter, bias: false);
            foreach (var m in new[] { "q_proj", "k_proj", "v_proj" }) t.VisionLinear($"{p}attention.{m}", heads * headDim, h, bias: false);
            t.VisionLinear(p + "attention.o_proj", h, heads * headDim, bias: false);
            t.Vision(p + "ffn_norm.weight", h);
        }
        const string j = "multi_modal_projector.";
        t.Vision(j + "norm.weight", h);
        // Mistral3PatchMerger.merging_layer: nn.Linear(h·merge², h, bias=False).
        t.VisionLinear(j + "patch_merger.merging_layer", h, checked(h * merge * merge), bias: false);
        Projection(t, j + "linear_1", text.HiddenSize, h * featureLayers, projectorBias);
        Projection(t, j + "linear_2", text.HiddenSize, text.HiddenSize, projectorBias);
        t.AddRange(text.Tensors.Select(x => x.Name.StartsWith("model.", StringComparison.Ordinal)
            ? x with { Name = "language_model." + x.Name }
            : x.Name.StartsWith("lm_head.", StringComparison.Ordinal) ? x with { Name = "language_model." + x.Name } : x));
        // Several feature layers concatenated before linear_1, or heads narrower than hidden / heads: image inputs not planned.
        var encoder = featureLayers != 1 || headDim * heads != h ? null : new VisionEncoder
        {
            Kind = VisionEncoderKind.Pixtral,
            Depth = depth,
            HiddenSize = h,
            IntermediateSize = inter,
            Heads = heads,
            PatchSize = checked((int)patch),
            Channels = checked((int)channels),
            MergeSize = checked((int)merge),
            ImageSize = vision.OptionalDim("image_size") ?? 1024,
        };
        return text with { ModelType = modelType, BaseModelPrefix = "language_model.model.", Tensors = t.Tensors, Vision = encoder };
    }

    private static void Projection(TensorList t, string module, long outFeatures, long inFeatures, bool bias) =>
        t.VisionLinear(module, outFeatures, inFeatures, bias);
}
