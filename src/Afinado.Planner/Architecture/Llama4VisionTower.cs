namespace Afinado.Planner.Architecture;

/// <summary>
/// The tensors of transformers' <c>Llama4VisionModel</c> (models/llama4/modeling_llama4.py): an unfold "convolution"
/// (one bias-free linear over channels × patch × patch), a class embedding, learned positions for every patch plus the
/// class token, LayerNorms before and after the encoder, encoder layers with biased q/k/v/o and fc1/fc2 and two
/// LayerNorms, and the pixel-shuffle adapter (<c>Llama4VisionMLP2</c>: two bias-free linears,
/// [projector_input_dim, intermediate_size] and [projector_output_dim, projector_output_dim]). Defaults are
/// <c>Llama4VisionConfig</c>'s.
/// </summary>
internal static class Llama4VisionTower
{
    public static void Add(TensorList t, ConfigFields v, string prefix)
    {
        long h = v.OptionalDim("hidden_size") ?? 768;
        long inter = v.OptionalDim("intermediate_size") ?? 5632;
        int layers = v.Has("num_hidden_layers") ? v.Count(ArchitectureLimits.MaxLayers, "num_hidden_layers") : 34;
        int heads = v.OptionalDim("num_attention_heads") ?? 16;
        if (h % heads != 0)
            throw v.Invalid("num_attention_heads", $"{heads} does not divide hidden_size {h}", "Restore the value from the model's original config.json.");
        long channels = v.OptionalDim("num_channels") ?? 3;
        int image = v.OptionalDim("image_size") ?? 448;
        int patch = v.OptionalDim("patch_size") ?? 14;
        if (patch > image)
            throw v.Invalid("patch_size", $"{patch} exceeds image_size {image}, leaving no patches", "Restore the value from the model's original config.json.");
        long projectorIn = v.OptionalDim("projector_input_dim") ?? 4096;
        long projectorOut = v.OptionalDim("projector_output_dim") ?? 4096;
        long perSide = image / patch;

        t.Vision(prefix + "class_embedding", h);
        t.Vision(prefix + "positional_embedding_vlm", checked(perSide * perSide + 1), h);
        // Llama4UnfoldConvolution: an nn.Linear(channels·patch², hidden, bias=False) over the unfolded patches.
        t.VisionLinear(prefix + "patch_embedding.linear", h, checked(channels * patch * patch), bias: false);
        t.VisionLayerNorm(prefix + "layernorm_pre", h);
        t.VisionLayerNorm(prefix + "layernorm_post", h);
        for (int i = 0; i < layers; i++)
        {
            string p = $"{prefix}model.layers.{i}.";
            foreach (var m in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) t.VisionLinear($"{p}self_attn.{m}", h, h);
            t.VisionLinear(p + "mlp.fc1", inter, h);
            t.VisionLinear(p + "mlp.fc2", h, inter);
            t.VisionLayerNorm(p + "input_layernorm", h);
            t.VisionLayerNorm(p + "post_attention_layernorm", h);
        }
        // Llama4VisionMLP2: two nn.Linear(bias=False).
        t.VisionLinear(prefix + "vision_adapter.mlp.fc1", projectorIn, inter, bias: false);
        t.VisionLinear(prefix + "vision_adapter.mlp.fc2", projectorOut, projectorOut, bias: false);
    }
}
