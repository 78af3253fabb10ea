using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// <c>gemma3</c>: transformers' Gemma3ForConditionalGeneration (models/gemma3/modeling_gemma3.py). Its <c>model</c> holds
/// a gemma3_text decoder as <c>language_model</c>, a SigLIP <c>vision_tower</c> and a <c>multi_modal_projector</c>
/// (RMSNorm over the vision width, then one bias-free [vision, text] matrix); <c>lm_head</c> sits beside <c>model</c>.
/// Everything the planner sizes by layer (activations, KV cache) is the text decoder's; the vision tensors add weights only.
/// </summary>
internal static class Gemma3Family
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        var textConfig = c.Section("text_config", "gemma3", "the text model and the vision tower");
        var visionConfig = c.Section("vision_config", "gemma3", "the text model and the vision tower");
        if (textConfig.OptionalString("model_type") is { } tt && tt != "gemma3_text")
            throw c.Invalid("text_config.model_type", $"is \"{tt}\", expected \"gemma3_text\"", "Restore the value from the model's original config.json.");
        if (visionConfig.OptionalString("model_type") is { } vt && vt != "siglip_vision_model")
            throw c.Invalid("vision_config.model_type", $"is \"{vt}\", expected \"siglip_vision_model\"", "Restore the value from the model's original config.json.");

        var text = LlamaFamily.Build(textConfig, "gemma3_text");
        var t = new TensorList();
        // Gemma3Model names the decoder language_model, so model.layers.N becomes model.language_model.layers.N.
        t.AddRange(text.Tensors.Select(x => x.Name.StartsWith("model.", StringComparison.Ordinal)
            ? x with { Name = "model.language_model." + x.Name["model.".Length..] }
            : x));
        SiglipVisionTower.Add(t, visionConfig, "model.vision_tower.vision_model.");
        long visionWidth = visionConfig.OptionalDim("hidden_size") ?? 768;
        t.Vision("model.multi_modal_projector.mm_input_projection_weight", visionWidth, text.HiddenSize);
        t.Vision("model.multi_modal_projector.mm_soft_emb_norm.weight", visionWidth);
        return text with { ModelType = modelType, Tensors = t.Tensors, Vision = Encoder(c, visionConfig) };
    }

    /// <summary>SigLIP as an image's memory sees it (SiglipVisionConfig's defaults; Gemma3Config's mm_tokens_per_image 256).</summary>
    private static VisionEncoder Encoder(ConfigFields c, ConfigFields v)
    {
        int image = v.OptionalDim("image_size") ?? 224, patch = v.OptionalDim("patch_size") ?? 16;
        int tokens = c.OptionalDim("mm_tokens_per_image") ?? 256;
        int side = image / patch, pooled = (int)Math.Round(Math.Sqrt(tokens));
        // Gemma3MultiModalProjector pools the patch grid with kernel side / √tokens: both must divide evenly.
        if (pooled * pooled != tokens || pooled == 0 || side % pooled != 0)
            throw c.Invalid("mm_tokens_per_image", $"{tokens} is not a square whose side divides the {side} × {side} patch grid",
                "Restore the value from the model's original config.json (256 for every Gemma 3).");
        return new VisionEncoder
        {
            Kind = VisionEncoderKind.Siglip,
            Depth = v.Has("num_hidden_layers") ? v.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers") : 12,
            HiddenSize = v.OptionalDim("hidden_size") ?? 768,
            IntermediateSize = v.OptionalDim("intermediate_size") ?? 3072,
            Heads = v.OptionalDim("num_attention_heads") ?? 12,
            PatchSize = patch,
            Channels = v.OptionalDim("num_channels") ?? 3,
            ImageSize = image,
            TokensPerImage = tokens,
        };
    }
}
