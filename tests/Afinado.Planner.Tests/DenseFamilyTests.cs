using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests;

/// <summary>
/// Tensor layouts of the dense families that reuse the Llama builder with a twist (olmo2, granite, smollm3), checked
/// against transformers' modules: what `afinado inspect` compares real checkpoints with.
/// </summary>
public class DenseFamilyTests
{
    private static ModelArchitecture Edited(string id, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(id))!.AsObject();
        edit(node);
        return HfConfigReader.Parse(node.ToJsonString());
    }

    private static long[] Shape(ModelArchitecture a, string name) => a.Tensors.Single(t => t.Name == name).Shape;

    [Fact]
    public void Olmo2_has_post_norms_only_and_qk_norms_over_the_full_projection_widths()
    {
        // A grouped variant so q and k widths differ: 32 heads × 128 = 4096 for q, 8 × 128 = 1024 for k.
        var a = Edited("allenai/OLMo-2-1124-7B", c => c["num_key_value_heads"] = 8);
        Assert.DoesNotContain(a.Tensors, t => t.Name.EndsWith("input_layernorm.weight", StringComparison.Ordinal));
        Assert.Equal([4096L], Shape(a, "model.layers.0.self_attn.q_norm.weight"));
        Assert.Equal([1024L], Shape(a, "model.layers.0.self_attn.k_norm.weight"));
        Assert.Equal([4096L], Shape(a, "model.layers.31.post_attention_layernorm.weight"));
        Assert.Equal([4096L], Shape(a, "model.layers.31.post_feedforward_layernorm.weight"));
        Assert.Equal([100352L, 4096L], Shape(a, "lm_head.weight"));
        Assert.True(a.QkNorm);
        // Per layer: 4 attention linears, 2 q/k norms, 3 MLP linears and 2 post-norms, all weights only.
        Assert.Equal(11, a.Tensors.Count(t => t.Layer == 0));
    }

    [Fact]
    public void Olmo2_defaults_follow_its_config_class()
    {
        // Olmo2Config: rms_norm_eps 1e-5, untied head, no biases unless attention_bias.
        var a = Edited("allenai/OLMo-2-1124-7B", c => { c.Remove("rms_norm_eps"); c.Remove("tie_word_embeddings"); c["attention_bias"] = true; });
        Assert.Equal(1e-5, a.NormEpsilon);
        Assert.Contains(a.Tensors, t => t.Name == "lm_head.weight");
        Assert.Equal([4096L], Shape(a, "model.layers.0.self_attn.o_proj.bias"));
        Assert.DoesNotContain(a.Tensors, t => t.Name.Contains("mlp", StringComparison.Ordinal) && t.IsBias);
    }

    [Fact]
    public void Granite_reads_its_multipliers_and_keeps_llama_tensors()
    {
        var a = ModelCatalog.Get("ibm-granite/granite-3.3-8b-instruct");
        Assert.Equal(12.0, a.EmbeddingMultiplier);
        Assert.Equal(0.22, a.ResidualMultiplier);
        Assert.Equal(0.0078125, a.AttentionMultiplier);
        Assert.Equal(16.0, a.LogitsScaling);
        Assert.True(a.TiedEmbeddings);
        Assert.Equal([1024L, 4096L], Shape(a, "model.layers.39.self_attn.k_proj.weight"));
        Assert.Equal([4096L], Shape(a, "model.layers.0.input_layernorm.weight"));
        // GraniteConfig defaults every multiplier to 1 (no scaling), the head to untied; mlp_bias adds the MLP biases.
        var d = Edited("ibm-granite/granite-3.3-8b-instruct", c =>
        {
            foreach (var k in new[] { "embedding_multiplier", "residual_multiplier", "attention_multiplier", "logits_scaling", "tie_word_embeddings" }) c.Remove(k);
            c["mlp_bias"] = true;
        });
        Assert.Equal((1.0, 1.0, (double?)1.0, 1.0), (d.EmbeddingMultiplier, d.ResidualMultiplier, d.AttentionMultiplier, d.LogitsScaling));
        Assert.Equal([49159L, 4096L], Shape(d, "lm_head.weight"));
        Assert.Equal([12800L], Shape(d, "model.layers.0.mlp.up_proj.bias"));
    }

    [Fact]
    public void Models_without_granite_multipliers_scale_nothing()
    {
        var a = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        Assert.Equal((1.0, 1.0, (double?)null, 1.0), (a.EmbeddingMultiplier, a.ResidualMultiplier, a.AttentionMultiplier, a.LogitsScaling));
    }

    [Fact]
    public void SmolLM3_ties_its_head_by_default_and_ignores_nope_layers_for_tensors()
    {
        var a = ModelCatalog.Get("HuggingFaceTB/SmolLM3-3B");
        Assert.True(a.TiedEmbeddings);
        Assert.DoesNotContain(a.Tensors, t => t.Name == "lm_head.weight");
        Assert.Equal(5_000_000.0, a.RopeTheta);
        Assert.Equal([512L, 2048L], Shape(a, "model.layers.35.self_attn.v_proj.weight"));
        // Every fourth layer is NoPE but has exactly the tensors of the others.
        Assert.Equal(a.Tensors.Count(t => t.Layer == 0), a.Tensors.Count(t => t.Layer == 3));
        var d = Edited("HuggingFaceTB/SmolLM3-3B", c => { c.Remove("rope_theta"); c.Remove("max_position_embeddings"); c["tie_word_embeddings"] = false; });
        Assert.Equal((2_000_000.0, 32768), (d.RopeTheta, d.MaxPositionEmbeddings));
        Assert.Equal(a.ParameterCount + 128256L * 2048, d.ParameterCount);
    }

    [Theory]
    [InlineData("allenai/OLMo-2-1124-7B")]
    [InlineData("Qwen/Qwen3-8B")]
    public void Activation_profile_tells_qk_norms_from_the_two_block_norms(string id)
    {
        // OLMo 2's q/k norms are as wide as the projections, so they are recognised by name, not by a head_dim width.
        var layer = ModelProfile.Create(TrainableSelection.Full(ModelCatalog.Get(id))).Layers[0];
        Assert.Equal(2, layer.NormCount);
        Assert.True(layer.QkNormTrainable);
        Assert.True(layer.Norm1Trainable && layer.Norm2Trainable);
    }
}
