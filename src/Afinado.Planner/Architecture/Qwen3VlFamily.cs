using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// <c>qwen3_vl</c>: transformers' Qwen3VLForConditionalGeneration (models/qwen3_vl/modeling_qwen3_vl.py). The text model
/// (<c>text_config</c>, model_type <c>qwen3_vl_text</c>) is a qwen3 decoder (per-head q/k RMSNorms, no biases) named
/// <c>model.language_model.*</c>; the head is <c>lm_head</c> unless tied. The vision model (<c>model.visual.*</c>,
/// Qwen3VLVisionModel): a biased Conv3d patch embedding [hidden, channels, temporal_patch_size, patch, patch], learned
/// positions <c>pos_embed</c> [num_position_embeddings, hidden], <c>depth</c> blocks of two LayerNorms, a fused biased
/// <c>attn.qkv</c>, <c>attn.proj</c> and a biased two-layer MLP (<c>linear_fc1</c>/<c>linear_fc2</c>), then the patch
/// merger (LayerNorm over hidden, [hidden·m², hidden·m²] and [out_hidden_size, hidden·m²] biased linears; m =
/// spatial_merge_size) and one "deepstack" merger per <c>deepstack_visual_indexes</c> entry whose LayerNorm spans the
/// merged width. The vision weights are frozen memory here; a text step runs no image (image activations not planned).
/// </summary>
internal static class Qwen3VlFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        var textConfig = c.Section("text_config", "qwen3_vl", "the text model and the vision model");
        var vision = c.Section("vision_config", "qwen3_vl", "the text model and the vision model");
        if (textConfig.OptionalString("model_type") is { } tt && tt != "qwen3_vl_text")
            throw c.Invalid("text_config.model_type", $"is \"{tt}\", expected \"qwen3_vl_text\"", "Restore the value from the model's original config.json.");
        var text = LlamaFamily.Build(textConfig, "qwen3");
        int outHidden = vision.Dim("out_hidden_size");
        // The mergers' output replaces the image tokens' embeddings (and is added to early layers' states): decoder-wide.
        if (outHidden != text.HiddenSize)
            throw vision.Invalid("out_hidden_size", $"is {outHidden} but the text model's hidden_size is {text.HiddenSize}", "Restore the value from the model's original config.json.");

        var t = new TensorList();
        AddVisionModel(t, vision, outHidden, "model.visual.");
        t.AddRange(text.Tensors.Select(x => x.Name.StartsWith("model.", StringComparison.Ordinal)
            ? x with { Name = "model.language_model." + x.Name["model.".Length..] }
            : x));
        return text with { ModelType = modelType, BaseModelPrefix = "model.language_model.", Tensors = t.Tensors, Vision = Encoder(vision) };
    }

    /// <summary>The vision model as an image's memory sees it; the processor's pixel bounds are those the Qwen3-VL
    /// checkpoints' preprocessor_config.json ship (size shortest_edge 65,536, longest_edge 16,777,216).</summary>
    private static VisionEncoder Encoder(ConfigFields v)
    {
        int depth = v.Count(ArchitectureLimits.MaxLayers, "depth");
        return new VisionEncoder
        {
            Kind = VisionEncoderKind.Qwen3Vl,
            Depth = depth,
            HiddenSize = v.Dim("hidden_size"),
            IntermediateSize = v.Dim("intermediate_size"),
            Heads = v.Dim("num_heads"),
            PatchSize = v.OptionalDim("patch_size") ?? 16,
            Channels = v.OptionalDim("in_channels") ?? 3,
            MergeSize = v.OptionalDim("spatial_merge_size") ?? 2,
            TemporalPatchSize = v.OptionalDim("temporal_patch_size") ?? 2,
            DeepstackMergers = v.LayerIndices("deepstack_visual_indexes", depth).Count,
            MinPixels = 65_536,
            MaxPixels = 16_777_216,
        };
    }

    private static void AddVisionModel(TensorList t, ConfigFields v, long outHidden, string prefix)
    {
        long h = v.Dim("hidden_size");
        long inter = v.Dim("intermediate_size");
        int depth = v.Count(ArchitectureLimits.MaxLayers, "depth");
        int heads = v.Dim("num_heads");
        if (h % heads != 0)
            throw v.Invalid("num_heads", $"{heads} does not divide hidden_size {h}", "Restore the value from the model's original config.json.");
        long channels = v.OptionalDim("in_channels") ?? 3;
        long patch = v.OptionalDim("patch_size") ?? 16;
        long temporal = v.OptionalDim("temporal_patch_size") ?? 2;
        long merge = v.OptionalDim("spatial_merge_size") ?? 2;
        long positions = v.OptionalDim("num_position_embeddings") ?? 2304;
        var deepstack = v.LayerIndices("deepstack_visual_indexes", depth);
        long merged = checked(h * merge * merge);

        t.Vision(prefix + "patch_embed.proj.weight", h, channels, temporal, patch, patch);
        t.Vision(prefix + "patch_embed.proj.bias", h);
        t.Vision(prefix + "pos_embed.weight", positions, h);
        for (int i = 0; i < depth; i++)
        {
            string p = $"{prefix}blocks.{i}.";
            t.VisionLayerNorm(p + "norm1", h);
            t.VisionLayerNorm(p + "norm2", h);
            t.VisionLinear(p + "attn.qkv", 3 * h, h);
            t.VisionLinear(p + "attn.proj", h, h);
            t.VisionLinear(p + "mlp.linear_fc1", inter, h);
            t.VisionLinear(p + "mlp.linear_fc2", h, inter);
        }
        Merger(t, prefix + "merger.", h, merged, outHidden);
        for (int j = 0; j < deepstack.Count; j++) Merger(t, $"{prefix}deepstack_merger_list.{j}.", merged, merged, outHidden);
    }

    /// <summary>Qwen3VLVisionPatchMerger: its LayerNorm spans <paramref name="normWidth"/> (hidden before the shuffle, the
    /// merged width after it for the deepstack mergers).</summary>
    private static void Merger(TensorList t, string prefix, long normWidth, long merged, long outHidden)
    {
        t.VisionLayerNorm(prefix + "norm", normWidth);
        t.VisionLinear(prefix + "linear_fc1", merged, merged);
        t.VisionLinear(prefix + "linear_fc2", outHidden, merged);
    }
}
