namespace Afinado.Planner.Architecture;

/// <summary>
/// The tensors of transformers' <c>SiglipVisionModel</c> (models/siglip/modeling_siglip.py) as Gemma 3 nests it: patch
/// convolution, learned position embeddings, pre-norm encoder layers with biased q/k/v/out and fc1/fc2, a post-norm, and
/// the attention-pooling head when <c>vision_use_head</c> is not false. Defaults are <c>SiglipVisionConfig</c>'s.
/// </summary>
internal static class SiglipVisionTower
{
    public static void Add(TensorList t, ConfigFields v, string prefix)
    {
        long h = v.OptionalDim("hidden_size") ?? 768;
        long inter = v.OptionalDim("intermediate_size") ?? 3072;
        int layers = v.Has("num_hidden_layers") ? v.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers") : 12;
        int heads = v.OptionalDim("num_attention_heads") ?? 12;
        // SiglipAttention raises unless the heads split hidden_size evenly.
        if (h % heads != 0)
            throw v.Invalid("num_attention_heads", $"{heads} does not divide hidden_size {h}", "Restore the value from the model's original config.json.");
        long channels = v.OptionalDim("num_channels") ?? 3;
        int image = v.OptionalDim("image_size") ?? 224;
        int patch = v.OptionalDim("patch_size") ?? 16;
        if (patch > image)
            throw v.Invalid("patch_size", $"{patch} exceeds image_size {image}, leaving no patches", "Restore the value from the model's original config.json.");
        long patchesPerSide = image / patch;
        // SiglipVisionTransformer builds the head unless the config has vision_use_head false (every Gemma 3 config does).
        bool head = v.Bool("vision_use_head", true);

        string e = prefix + "embeddings.";
        t.Vision(e + "patch_embedding.weight", h, channels, patch, patch);
        t.Vision(e + "patch_embedding.bias", h);
        t.Vision(e + "position_embedding.weight", checked(patchesPerSide * patchesPerSide), h);
        for (int i = 0; i < layers; i++)
        {
            string p = $"{prefix}encoder.layers.{i}.";
            t.VisionLayerNorm(p + "layer_norm1", h);
            foreach (var m in new[] { "k_proj", "v_proj", "q_proj", "out_proj" }) t.VisionLinear($"{p}self_attn.{m}", h, h);
            t.VisionLayerNorm(p + "layer_norm2", h);
            t.VisionLinear(p + "mlp.fc1", inter, h);
            t.VisionLinear(p + "mlp.fc2", h, inter);
        }
        t.VisionLayerNorm(prefix + "post_layernorm", h);
        if (!head) return;
        // SiglipMultiheadAttentionPoolingHead: a learned probe, torch's nn.MultiheadAttention (packed in_proj), LayerNorm, MLP.
        t.Vision(prefix + "head.probe", 1, 1, h);
        t.Vision(prefix + "head.attention.in_proj_weight", 3 * h, h);
        t.Vision(prefix + "head.attention.in_proj_bias", 3 * h);
        t.VisionLinear(prefix + "head.attention.out_proj", h, h);
        t.VisionLayerNorm(prefix + "head.layernorm", h);
        t.VisionLinear(prefix + "head.mlp.fc1", inter, h);
        t.VisionLinear(prefix + "head.mlp.fc2", h, inter);
    }
}
