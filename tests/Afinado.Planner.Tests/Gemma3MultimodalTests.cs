using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests;

/// <summary>
/// gemma3 (Gemma3ForConditionalGeneration): the gemma3_text decoder under model.language_model, a SigLIP tower under
/// model.vision_tower.vision_model and the multi_modal_projector, read from a config whose text_config is sparse.
/// </summary>
public class Gemma3MultimodalTests
{
    private static ParameterTensor Tensor(ModelArchitecture a, string name) => Assert.Single(a.Tensors, t => t.Name == name);

    private static JsonObject Config() => JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-3-4b-it"))!.AsObject();

    private static InputError Bad(JsonObject json) => Assert.Throws<InputError>(() => HfConfigReader.Parse(json.ToJsonString(), "cfg.json"));

    [Fact]
    public void Sparse_text_config_takes_gemma3_text_defaults()
    {
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        Assert.Equal("gemma3", a.ModelType);
        // text_config names hidden_size, intermediate_size, layers, rope_scaling and sliding_window; the rest are defaults.
        Assert.Equal((262_208, 2560, 34, 8, 4, 256), (a.VocabSize, a.HiddenSize, a.NumLayers, a.NumHeads, a.NumKvHeads, a.HeadDim));
        Assert.Equal(1024, a.SlidingWindow);
        Assert.Equal(29, Enumerable.Range(0, 34).Count(a.IsSlidingLayer));
        Assert.Equal(("linear", 8.0), (a.RopeScaling!.Type, a.RopeScaling.Factor));
        Assert.Equal(256.0, a.QueryPreAttnScalar);
        Assert.True(a.TiedEmbeddings);
        Assert.Equal([2048L, 2560], Tensor(a, "model.language_model.layers.33.self_attn.q_proj.weight").Shape);
        Assert.Equal([256L], Tensor(a, "model.language_model.layers.0.self_attn.k_norm.weight").Shape);
        Assert.Equal([262_208L, 2560], Tensor(a, "model.language_model.embed_tokens.weight").Shape);
        Assert.DoesNotContain(a.Tensors, t => t.Name.StartsWith("model.layers.", StringComparison.Ordinal));
    }

    [Fact]
    public void The_27b_reads_its_own_widths_and_query_scale()
    {
        // google/gemma-3-27b-it: head_dim 128 with query_pre_attn_scalar 168 (hidden / heads), 62 layers of which every
        // sixth is global; Hugging Face lists the checkpoint at 27.4B parameters.
        var a = ModelCatalog.Get("google/gemma-3-27b-it");
        Assert.Equal((262_208, 5376, 62, 32, 16, 128), (a.VocabSize, a.HiddenSize, a.NumLayers, a.NumHeads, a.NumKvHeads, a.HeadDim));
        Assert.Equal(168.0, a.QueryPreAttnScalar);
        Assert.Equal(52, Enumerable.Range(0, 62).Count(a.IsSlidingLayer));
        Assert.Equal([4096L, 5376], Tensor(a, "model.language_model.layers.61.self_attn.q_proj.weight").Shape);
        Assert.Equal(27.4, Math.Round(a.ParameterCount / 1e9, 1));
        // The same SigLIP tower as the 4B.
        long vision(ModelArchitecture m) => m.Tensors.Where(t => t.Role == TensorRole.Vision && !t.Name.Contains("projector", StringComparison.Ordinal)).Sum(t => t.Elements);
        Assert.Equal(vision(ModelCatalog.Get("google/gemma-3-4b-it")), vision(a));
    }

    [Fact]
    public void Vision_tower_and_projector_are_listed_with_siglip_shapes()
    {
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        const string v = "model.vision_tower.vision_model.";
        Assert.Equal([1152L, 3, 14, 14], Tensor(a, v + "embeddings.patch_embedding.weight").Shape);
        // (896 / 14)² = 4096 patch positions.
        Assert.Equal([4096L, 1152], Tensor(a, v + "embeddings.position_embedding.weight").Shape);
        Assert.Equal([4304L, 1152], Tensor(a, v + "encoder.layers.26.mlp.fc1.weight").Shape);
        Assert.Equal([1152L], Tensor(a, v + "encoder.layers.0.self_attn.out_proj.bias").Shape);
        Assert.Equal([1152L], Tensor(a, v + "post_layernorm.bias").Shape);
        Assert.Equal([1152L, 2560], Tensor(a, "model.multi_modal_projector.mm_input_projection_weight").Shape);
        Assert.Equal([1152L], Tensor(a, "model.multi_modal_projector.mm_soft_emb_norm.weight").Shape);
        // vision_use_head false: no pooling head. Per encoder layer: two LayerNorms, four biased projections, two biased MLP linears.
        Assert.DoesNotContain(a.Tensors, t => t.Name.Contains(".head.", StringComparison.Ordinal));
        Assert.Equal(3 + 27 * 16 + 2 + 2, a.Tensors.Count(t => t.Role == TensorRole.Vision));
        Assert.All(a.Tensors.Where(t => t.Role == TensorRole.Vision), t => Assert.Null(t.Layer));
        // LoRA targets and the activation ledger see only the text decoder.
        Assert.All(a.Linears, l => Assert.StartsWith("model.language_model.layers.", l.Module));
    }

    [Theory]
    [InlineData(TrainingMethod.Full)]
    [InlineData(TrainingMethod.Lora)]
    public void Text_finetuning_keeps_the_vision_tower_frozen(TrainingMethod method)
    {
        // A text step gives the tower no gradient, so it must carry no gradient or optimizer state in the plan.
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        var selection = Planner.Fit.Planner.SelectionFor(a, new Job { Method = method, Seq = 256 });
        Assert.DoesNotContain(selection.TrainableBaseTensors, t => t.Role == TensorRole.Vision);
        Assert.DoesNotContain(selection.AdaptedLinears, t => t.Role == TensorRole.Vision);
        Assert.Equal(a.Tensors.Count(t => t.Role == TensorRole.Vision), selection.FrozenBaseTensors.Count(t => t.Role == TensorRole.Vision));
        if (method == TrainingMethod.Full)
            Assert.Equal(a.ParameterCount - a.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements), selection.TrainableBaseParameters);
    }

    [Fact]
    public void Vision_use_head_absent_builds_the_attention_pooling_head()
    {
        var json = Config();
        json["vision_config"]!.AsObject().Remove("vision_use_head");
        var a = HfConfigReader.Parse(json.ToJsonString(), "cfg.json");
        const string h = "model.vision_tower.vision_model.head.";
        Assert.Equal([1L, 1, 1152], Tensor(a, h + "probe").Shape);
        Assert.Equal([3456L, 1152], Tensor(a, h + "attention.in_proj_weight").Shape);
        Assert.Equal([3456L], Tensor(a, h + "attention.in_proj_bias").Shape);
        Assert.Equal([1152L, 4304], Tensor(a, h + "mlp.fc2.weight").Shape);
        // probe, in_proj (2), out_proj (2), layernorm (2), fc1 (2), fc2 (2).
        Assert.Equal(11, a.Tensors.Count(t => t.Name.StartsWith(h, StringComparison.Ordinal)));
        var without = ModelCatalog.Get("google/gemma-3-4b-it");
        long headElements = 1152 + 3L * 1152 * 1152 + 3 * 1152 + 1152L * 1152 + 1152 + 2 * 1152 + 4304L * 1152 + 4304 + 1152L * 4304 + 1152;
        Assert.Equal(without.ParameterCount + headElements, a.ParameterCount);
    }

    [Theory]
    [InlineData("text_config", null, "is missing")]
    [InlineData("vision_config", "[]", "must be an object")]
    [InlineData("text_config.model_type", "\"gemma2\"", "expected \"gemma3_text\"")]
    [InlineData("vision_config.model_type", "\"clip_vision_model\"", "expected \"siglip_vision_model\"")]
    public void Bad_nested_blocks_are_named(string key, string? json, string problem)
    {
        var node = Config();
        var parts = key.Split('.');
        var owner = parts.Length == 1 ? node : node[parts[0]]!.AsObject();
        if (json is null) owner.Remove(parts[^1]); else owner[parts[^1]] = JsonNode.Parse(json);
        var e = Bad(node);
        Assert.Equal($"cfg.json: {key}", e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Theory]
    [InlineData("vision_config", "num_attention_heads", "7", "does not divide hidden_size 1152")]
    [InlineData("vision_config", "patch_size", "1000", "exceeds image_size 896")]
    [InlineData("vision_config", "hidden_size", "0", "must be positive")]
    [InlineData("text_config", "layer_types", "[\"full_attention\"]", "has 1 entries but num_hidden_layers is 34")]
    [InlineData("text_config", "sliding_window", "-1", "must be positive")]
    public void Bad_nested_values_name_the_block_and_key(string block, string key, string json, string problem)
    {
        var node = Config();
        node[block]![key] = JsonNode.Parse(json);
        var e = Bad(node);
        Assert.Equal($"cfg.json: {block}: {key}", e.Field);
        Assert.Contains(problem, e.Problem);
    }
}
