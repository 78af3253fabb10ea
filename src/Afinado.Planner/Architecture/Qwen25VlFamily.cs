using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// <c>qwen2_5_vl</c>: transformers' Qwen2_5_VLForConditionalGeneration (models/qwen2_5_vl/modeling_qwen2_5_vl.py). The text
/// model is a qwen2 decoder (q/k/v biases; its fields at the config's top level, or in <c>text_config</c> as transformers
/// ≥ 4.53 saves them), named <c>model.*</c> and <c>lm_head</c> in the hub checkpoints. The vision transformer
/// (<c>visual.*</c>, Qwen2_5_VisionTransformerPretrainedModel): a bias-free Conv3d patch embedding
/// [hidden, channels, temporal_patch_size, patch, patch], <c>depth</c> blocks of two RMSNorms, a fused biased
/// <c>attn.qkv</c> and <c>attn.proj</c>, and a biased gated MLP of <c>intermediate_size</c>, then the patch merger (an
/// RMSNorm and two biased linears, [hidden·m², hidden·m²] and [out_hidden_size, hidden·m²], m = spatial_merge_size). The
/// vision weights are planned as frozen memory; a text step runs no image through them (image activations not planned).
/// </summary>
internal static class Qwen25VlFamily
{
    public static ModelArchitecture Build(ConfigFields c, string modelType)
    {
        var textConfig = c.Element("text_config") is { } tc ? c.Section("text_config", tc) : c;
        var vision = c.Element("vision_config") is { } vc ? c.Section("vision_config", vc)
            : throw c.Invalid("vision_config", "is missing", "A qwen2_5_vl config.json nests the vision transformer; pass the original file.");
        var text = LlamaFamily.Build(textConfig, "qwen2");
        int outHidden = vision.Dim("out_hidden_size");
        // The merger's output replaces the image tokens' embeddings, so it must be as wide as the decoder.
        if (outHidden != text.HiddenSize)
            throw vision.Invalid("out_hidden_size", $"is {outHidden} but the text model's hidden_size is {text.HiddenSize}", "Restore the value from the model's original config.json.");

        var t = new TensorList();
        AddVisionTower(t, vision, outHidden, "visual.");
        t.AddRange(text.Tensors);
        return text with { ModelType = modelType, Tensors = t.Tensors, Vision = Encoder(vision) };
    }

    /// <summary>The tower as an image's memory sees it (Qwen2_5_VLVisionConfig's defaults: window_size 112,
    /// fullatt_block_indexes [7, 15, 23, 31]).</summary>
    private static VisionEncoder Encoder(ConfigFields v)
    {
        int depth = v.Count(ArchitectureLimits.MaxLayers, "depth");
        return new VisionEncoder
        {
            Kind = VisionEncoderKind.Qwen25Vl,
            Depth = depth,
            HiddenSize = v.Dim("hidden_size"),
            IntermediateSize = v.Dim("intermediate_size"),
            Heads = v.Dim("num_heads"),
            PatchSize = v.OptionalDim("patch_size") ?? 14,
            Channels = v.OptionalDim("in_channels", "in_chans") ?? 3,
            MergeSize = v.OptionalDim("spatial_merge_size") ?? 2,
            TemporalPatchSize = v.OptionalDim("temporal_patch_size") ?? 2,
            WindowSize = v.OptionalDim("window_size") ?? 112,
            FullAttentionBlocks = v.Has("fullatt_block_indexes") ? [.. v.LayerIndices("fullatt_block_indexes", depth).Order()] : [7, 15, 23, 31],
        };
    }

    private static void AddVisionTower(TensorList t, ConfigFields v, long outHidden, string prefix)
    {
        long h = v.Dim("hidden_size");
        long inter = v.Dim("intermediate_size");
        int depth = v.Count(ArchitectureLimits.MaxLayers, "depth");
        int heads = v.Dim("num_heads");
        if (h % heads != 0)
            throw v.Invalid("num_heads", $"{heads} does not divide hidden_size {h}", "Restore the value from the model's original config.json.");
        // The hub configs spell the channel count in_chans; Qwen2_5_VLVisionConfig names it in_channels.
        long channels = v.OptionalDim("in_channels", "in_chans") ?? 3;
        long patch = v.OptionalDim("patch_size") ?? 14;
        long temporal = v.OptionalDim("temporal_patch_size") ?? 2;
        long merge = v.OptionalDim("spatial_merge_size") ?? 2;
        long merged = checked(h * merge * merge);

        t.Vision(prefix + "patch_embed.proj.weight", h, channels, temporal, patch, patch);
        for (int i = 0; i < depth; i++)
        {
            string p = $"{prefix}blocks.{i}.";
            t.Vision(p + "norm1.weight", h);
            t.Vision(p + "norm2.weight", h);
            t.VisionLinear(p + "attn.qkv", 3 * h, h);
            t.VisionLinear(p + "attn.proj", h, h);
            t.VisionLinear(p + "mlp.gate_proj", inter, h);
            t.VisionLinear(p + "mlp.up_proj", inter, h);
            t.VisionLinear(p + "mlp.down_proj", h, inter);
        }
        t.Vision(prefix + "merger.ln_q.weight", h);
        t.VisionLinear(prefix + "merger.mlp.0", merged, merged);
        t.VisionLinear(prefix + "merger.mlp.2", outHidden, merged);
    }
}
