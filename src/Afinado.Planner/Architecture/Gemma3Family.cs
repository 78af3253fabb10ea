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
        var textConfig = Nested(c, "text_config");
        var visionConfig = Nested(c, "vision_config");
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
        return text with { ModelType = modelType, Tensors = t.Tensors };
    }

    /// <summary>A required sub-config object; its errors name the parent key (<c>cfg.json: text_config: hidden_size</c>).</summary>
    private static ConfigFields Nested(ConfigFields c, string key)
    {
        // Gemma3Config would fill an absent block with class defaults (a model nobody released); demand the real one.
        var element = c.Element(key)
            ?? throw c.Invalid(key, "is missing", "A gemma3 config.json nests the text model and the vision tower; pass the original file.");
        if (element.ValueKind != JsonValueKind.Object)
            throw c.Invalid(key, "must be an object", "Restore the value from the model's original config.json.");
        return new ConfigFields(element, $"{c.Source}: {key}");
    }
}
