using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;

namespace Afinado.Planner.Tests;

/// <summary>
/// phimoe (transformers models/phimoe/modeling_phimoe.py, configuration_phimoe.py): Mixtral's sparse block with LayerNorms
/// that have a bias, optional q/k/v/o and lm_head biases, and PhimoeConfig's defaults.
/// </summary>
public class PhimoeTests
{
    /// <summary>
    /// microsoft/Phi-3.5-MoE-instruct's architecture keys as public copies of its config.json give them (no verbatim copy
    /// was found to add to the catalog): PhimoeConfig's default widths, attention_bias and lm_head_bias true.
    /// </summary>
    internal static JsonObject Phi35Moe() => new()
    {
        ["model_type"] = "phimoe",
        ["hidden_size"] = 4096,
        ["intermediate_size"] = 6400,
        ["num_hidden_layers"] = 32,
        ["num_attention_heads"] = 32,
        ["num_key_value_heads"] = 8,
        ["vocab_size"] = 32064,
        ["num_local_experts"] = 16,
        ["num_experts_per_tok"] = 2,
        ["attention_bias"] = true,
        ["lm_head_bias"] = true,
        ["tie_word_embeddings"] = false,
        ["max_position_embeddings"] = 131072,
        ["sliding_window"] = 131072,
        ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = 10000.0,
    };

    internal static ModelArchitecture Parse(JsonObject json) => HfConfigReader.Parse(json.ToJsonString(), "cfg.json");

    private static InputError Bad(Action<JsonObject> edit)
    {
        var json = Phi35Moe();
        edit(json);
        return Assert.Throws<InputError>(() => Parse(json));
    }

    [Fact]
    public void Every_norm_is_a_layernorm_with_a_bias()
    {
        var a = Parse(Phi35Moe());
        Assert.Equal((NormKind.LayerNorm, true), (a.Norm, a.NormBias));
        // Two per layer plus model.norm, each a weight and a bias.
        var norms = a.Tensors.Where(t => t.Role == TensorRole.Norm).ToList();
        Assert.Equal(2 * (2 * 32 + 1), norms.Count);
        Assert.Contains(norms, t => t.Name == "model.norm.bias");
        Assert.Contains(norms, t => t.Name == "model.layers.31.post_attention_layernorm.bias");
    }

    [Fact]
    public void It_is_a_mixture_of_experts_whose_active_count_drops_fourteen_of_sixteen_experts()
    {
        var a = Parse(Phi35Moe());
        Assert.True(a.IsMoE);
        Assert.Equal((16, 2), (a.NumExperts, a.ExpertsPerToken));
        Assert.Equal(a.ParameterCount - 32L * 14 * 3 * 4096 * 6400, a.ActiveParameterCount);
        Assert.Equal([16L, 4096L], a.Tensors.Single(t => t.Name == "model.layers.0.block_sparse_moe.gate.weight").Shape);
        Assert.Equal([6400L, 4096L], a.Tensors.Single(t => t.Name == "model.layers.0.block_sparse_moe.experts.15.w1.weight").Shape);
    }

    [Fact]
    public void Attention_and_head_biases_follow_their_flags()
    {
        var a = Parse(Phi35Moe());
        Assert.True(a.QkvBias && a.AttentionOutBias && a.LmHeadBias);
        Assert.Equal([1024L], a.Tensors.Single(t => t.Name == "model.layers.0.self_attn.k_proj.bias").Shape);
        Assert.Equal([4096L], a.Tensors.Single(t => t.Name == "model.layers.0.self_attn.o_proj.bias").Shape);
        Assert.Equal([32064L], a.Tensors.Single(t => t.Name == "lm_head.bias").Shape);

        var plain = Phi35Moe();
        plain["attention_bias"] = false;
        plain["lm_head_bias"] = false;
        // Exactly the q, k, v, o biases of every layer and the head's bias disappear.
        Assert.Equal(a.ParameterCount - 32L * (4096 + 1024 + 1024 + 4096) - 32064, Parse(plain).ParameterCount);
    }

    [Fact]
    public void A_config_naming_only_the_model_type_gets_PhimoeConfig_defaults()
    {
        var a = Parse(new JsonObject { ["model_type"] = "phimoe" });
        Assert.Equal((4096, 6400, 32, 32, 8, 32064), (a.HiddenSize, a.IntermediateSize, a.NumLayers, a.NumHeads, a.NumKvHeads, a.VocabSize));
        Assert.Equal((16, 2), (a.NumExperts, a.ExpertsPerToken));
        Assert.Equal((1e6, 131072, 1e-5), (a.RopeTheta, a.MaxPositionEmbeddings, a.NormEpsilon));
        // attention_bias, lm_head_bias and tie_word_embeddings default to false; sliding_window to None.
        Assert.False(a.QkvBias || a.AttentionOutBias || a.LmHeadBias || a.TiedEmbeddings);
        Assert.Null(a.SlidingWindow);
        Assert.Contains(a.Tensors, t => t.Name == "lm_head.weight");
        Assert.DoesNotContain(a.Tensors, t => t.Name == "lm_head.bias");
    }

    [Fact]
    public void A_tied_head_keeps_its_own_bias()
    {
        var json = Phi35Moe();
        json["tie_word_embeddings"] = true;
        var a = Parse(json);
        Assert.DoesNotContain(a.Tensors, t => t.Name == "lm_head.weight");
        Assert.Contains(a.Tensors, t => t.Name == "lm_head.bias");
        Assert.Equal(Parse(Phi35Moe()).ParameterCount - 32064L * 4096, a.ParameterCount);
    }

    [Theory]
    [InlineData("num_experts_per_tok", "17", "exceeds num_local_experts 16")]
    [InlineData("num_experts_per_tok", "1", "must be 2")]
    [InlineData("num_experts_per_tok", "0", "at least 1")]
    [InlineData("num_local_experts", "0", "at least 1")]
    [InlineData("num_local_experts", "100000", "beyond any real model")]
    [InlineData("attention_bias", "\"yes\"", "true or false")]
    [InlineData("lm_head_bias", "1", "true or false")]
    [InlineData("sliding_window", "0", "must be positive")]
    [InlineData("rms_norm_eps", "-1", "must be positive")]
    [InlineData("hidden_size", "4100", "does not divide hidden_size")]
    public void Bad_values_are_named(string key, string value, string problem)
    {
        var e = Bad(c => c[key] = JsonNode.Parse(value));
        Assert.Contains(problem, e.Problem);
        // A width that the heads cannot split is reported against num_attention_heads, the key to fix.
        Assert.Equal(key == "hidden_size" ? "cfg.json: num_attention_heads" : $"cfg.json: {key}", e.Field);
    }
}
