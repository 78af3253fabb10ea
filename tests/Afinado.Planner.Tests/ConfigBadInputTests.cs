using System.Numerics;
using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;

namespace Afinado.Planner.Tests;

/// <summary>Bad config.json input gets an <see cref="InputError"/> that names the key and the fix; big-but-valid configs count exactly.</summary>
public class ConfigBadInputTests
{
    private static string Llama(Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("meta-llama/Llama-2-7b-hf"))!.AsObject();
        edit(node);
        return node.ToJsonString();
    }

    private static InputError Bad(string json) => Assert.Throws<InputError>(() => HfConfigReader.Parse(json, "cfg.json"));

    [Theory]
    [InlineData("{\"model_type\": \"llama\", ")]
    [InlineData("")]
    [InlineData("not json")]
    public void Malformed_json_is_named(string json)
    {
        var e = Bad(json);
        Assert.Equal("cfg.json", e.Field);
        Assert.Contains("not valid JSON", e.Problem);
    }

    [Fact]
    public void A_json_array_is_not_a_config() => Assert.Contains("not a JSON object", Bad("[1,2]").Message);

    [Fact]
    public void Missing_field_names_the_key()
    {
        var e = Bad(Llama(c => c.Remove("hidden_size")));
        Assert.Equal("cfg.json: hidden_size", e.Field);
        Assert.Contains("missing", e.Problem);
        Assert.Equal("cfg.json: model_type", Bad(Llama(c => c.Remove("model_type"))).Field);
    }

    [Theory]
    [InlineData("num_hidden_layers", -32, "must be positive")]
    [InlineData("num_attention_heads", 0, "must be positive")]
    [InlineData("hidden_size", 4096.5, "whole number")]
    [InlineData("vocab_size", 1e12, "beyond any real model")]
    [InlineData("num_hidden_layers", 100000, "beyond any real model")]
    [InlineData("rms_norm_eps", -1e-5, "must be positive")]
    [InlineData("num_key_value_heads", 5, "does not divide")]
    [InlineData("num_attention_heads", 33, "does not divide hidden_size")]
    public void Negative_absurd_and_inconsistent_numbers_are_named(string key, double value, string problem)
    {
        var e = Bad(Llama(c => c[key] = value));
        Assert.Contains(key, e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void Wrong_json_types_are_named()
    {
        Assert.Contains("found \"4096\"", Bad(Llama(c => c["hidden_size"] = "4096")).Problem);
        Assert.Contains("true or false", Bad(Llama(c => c["tie_word_embeddings"] = "no")).Problem);
        Assert.Contains("must be a string", Bad(Llama(c => c["model_type"] = 7)).Problem);
        Assert.Contains("whole number, found array", Bad(Llama(c => c["intermediate_size"] = new JsonArray(1))).Problem);
    }

    [Fact]
    public void Unknown_model_type_lists_every_supported_one()
    {
        var e = Bad(Llama(c => c["model_type"] = "t5"));
        Assert.Equal("cfg.json: model_type", e.Field);
        foreach (var t in new[] { "falcon", "gemma", "gemma2", "gemma3_text", "gpt2", "gpt_bigcode", "gpt_neox", "granite", "llama", "mistral", "mixtral", "olmo2", "phi", "phi3", "phimoe", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "smollm3" })
            Assert.Contains(t, e.Fix);
    }

    [Theory]
    [InlineData("embedding_multiplier", -12.0)]
    [InlineData("residual_multiplier", 0.0)]
    [InlineData("attention_multiplier", -0.0078125)]
    [InlineData("logits_scaling", 0.0)]
    public void Granite_multipliers_that_are_not_positive_are_named(string key, double value)
    {
        var json = JsonNode.Parse(ModelCatalog.ConfigJson("ibm-granite/granite-3.3-8b-instruct"))!.AsObject();
        json[key] = value;
        var e = Bad(json.ToJsonString());
        Assert.Equal($"cfg.json: {key}", e.Field);
        Assert.Contains("must be positive", e.Problem);
    }

    [Fact]
    public void Granite_multipliers_that_are_not_finite_numbers_are_named()
    {
        string json = ModelCatalog.ConfigJson("ibm-granite/granite-3.3-8b-instruct");
        // JSON has no infinity; a number past double's range is caught when the file is read, naming the key's path.
        var huge = Bad(json.Replace("\"logits_scaling\": 16.0", "\"logits_scaling\": 1e400"));
        Assert.Contains("logits_scaling", huge.Problem);
        Assert.Contains("out of range", huge.Problem);
        var text = Bad(json.Replace("\"embedding_multiplier\": 12.0", "\"embedding_multiplier\": \"12\""));
        Assert.Equal("cfg.json: embedding_multiplier", text.Field);
        Assert.Contains("must be a number", text.Problem);
    }

    [Theory]
    [InlineData("allenai/OLMo-2-1124-7B", "num_key_value_heads", 5.0, "does not divide")]
    [InlineData("allenai/OLMo-2-1124-7B", "rms_norm_eps", -1e-6, "must be positive")]
    [InlineData("HuggingFaceTB/SmolLM3-3B", "num_key_value_heads", 3.0, "does not divide")]
    [InlineData("HuggingFaceTB/SmolLM3-3B", "intermediate_size", -11008.0, "must be positive")]
    public void New_dense_families_name_bad_values(string id, string key, double value, string problem)
    {
        var json = JsonNode.Parse(ModelCatalog.ConfigJson(id))!.AsObject();
        json[key] = value;
        var e = Bad(json.ToJsonString());
        Assert.Contains(key, e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void Mixtral_routing_to_more_experts_than_exist_is_named()
    {
        var json = JsonNode.Parse(ModelCatalog.ConfigJson("mistralai/Mixtral-8x7B-v0.1"))!.AsObject();
        json["num_experts_per_tok"] = 9;
        Assert.Contains("exceeds num_local_experts", Bad(json.ToJsonString()).Problem);
    }

    [Theory]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "num_experts_per_tok", "61", "exceeds num_experts 60")]
    [InlineData("Qwen/Qwen3-30B-A3B", "num_experts_per_tok", "129", "exceeds num_experts 128")]
    [InlineData("Qwen/Qwen3-30B-A3B", "num_experts_per_tok", "0", "at least 1")]
    [InlineData("Qwen/Qwen3-30B-A3B", "decoder_sparse_step", "0", "at least 1")]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "decoder_sparse_step", "-2", "at least 1")]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "num_experts", "-1", "at least 0")]
    [InlineData("Qwen/Qwen3-30B-A3B", "num_experts", "100000", "beyond any real model")]
    [InlineData("Qwen/Qwen3-30B-A3B", "num_experts", "2.5", "whole number")]
    [InlineData("Qwen/Qwen3-30B-A3B", "mlp_only_layers", "[48]", "outside 0..47")]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "mlp_only_layers", "[0, -1]", "outside 0..23")]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "mlp_only_layers", "3", "list of layer indices")]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "mlp_only_layers", "[\"a\"]", "whole numbers")]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "moe_intermediate_size", "0", "must be positive")]
    [InlineData("Qwen/Qwen1.5-MoE-A2.7B-Chat", "shared_expert_intermediate_size", "-5632", "must be positive")]
    public void Qwen_moe_bad_values_name_the_key(string id, string key, string json, string problem)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(id))!.AsObject();
        node[key] = JsonNode.Parse(json);
        var e = Bad(node.ToJsonString());
        Assert.Equal($"cfg.json: {key}", e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Theory]
    [InlineData("layer_types", "[\"sliding_attention\", \"full_attention\"]", "has 2 entries but num_hidden_layers is 26")]
    [InlineData("layer_types", "\"sliding_attention\"", "must be a list")]
    [InlineData("layer_types", "{\"0\": \"full_attention\"}", "must be a list")]
    [InlineData("sliding_window", "0", "must be positive")]
    [InlineData("sliding_window", "-512", "must be positive")]
    [InlineData("sliding_window", "512.5", "whole number")]
    [InlineData("sliding_window_pattern", "0", "at least 1")]
    [InlineData("sliding_window_pattern", "\"6\"", "whole number")]
    [InlineData("rope_local_base_freq", "0", "must be positive")]
    [InlineData("query_pre_attn_scalar", "-256", "must be positive")]
    [InlineData("final_logit_softcapping", "0", "must be positive")]
    public void Gemma3_bad_values_name_the_key(string key, string json, string problem)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-3-1b-it"))!.AsObject();
        node[key] = JsonNode.Parse(json);
        var e = Bad(node.ToJsonString());
        Assert.Equal($"cfg.json: {key}", e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Theory]
    [InlineData(3, "\"chunked_attention\"", "entry 3 is \"chunked_attention\"")]
    [InlineData(25, "null", "entry 25 is null")]
    [InlineData(0, "1", "entry 0 is number")]
    public void Gemma3_unknown_layer_types_are_named_with_their_index(int index, string entry, string problem)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-3-1b-it"))!.AsObject();
        var types = new JsonArray(Enumerable.Range(0, 26).Select(_ => (JsonNode?)JsonValue.Create("full_attention")).ToArray());
        types[index] = JsonNode.Parse(entry);
        node["layer_types"] = types;
        var e = Bad(node.ToJsonString());
        Assert.Equal("cfg.json: layer_types", e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void Ten_trillion_parameters_are_counted_exactly_without_overflow()
    {
        // A Llama-shaped config of ~1.1e13 parameters: every width within limits, products far past 2^31.
        const long h = 131_072, inter = 524_288, layers = 40, vocab = 1_000_000, heads = 1024, kv = 128, hd = 128;
        var json = Llama(c =>
        {
            c["hidden_size"] = h; c["intermediate_size"] = inter; c["num_hidden_layers"] = layers;
            c["vocab_size"] = vocab; c["num_attention_heads"] = heads; c["num_key_value_heads"] = kv;
        });
        var arch = HfConfigReader.Parse(json);
        BigInteger perLayer = 2 * h + h * heads * hd * 2 + 2 * h * kv * hd + 3 * h * inter;
        BigInteger expected = 2 * vocab * h + layers * perLayer + h;
        Assert.Equal(expected, new BigInteger(arch.ParameterCount));
        Assert.InRange(arch.ParameterCount, 10_000_000_000_000L, 20_000_000_000_000L);
        Assert.Equal(2 * layers * kv * hd * 2, arch.KvBytesPerToken(2));
    }

    [Fact]
    public void Parameter_totals_beyond_the_limit_are_named_not_overflowed()
    {
        // 1e16 parameters: within long, beyond any model.
        var e = Bad(Llama(c => { c["hidden_size"] = 100_000_000; c["vocab_size"] = 100_000_000; c["num_attention_heads"] = 1; c["num_key_value_heads"] = 1; c["num_hidden_layers"] = 1; c["intermediate_size"] = 1; }));
        Assert.Contains("beyond any real model", e.Problem);
        // Past 2^63: the sum overflows and is caught as bad input.
        var o = Bad(Llama(c => { c["hidden_size"] = 100_000_000; c["intermediate_size"] = 100_000_000; c["num_hidden_layers"] = 4096; c["num_attention_heads"] = 1; c["num_key_value_heads"] = 1; }));
        Assert.Contains("2⁶³", o.Problem);
    }

    [Fact]
    public void Derived_widths_that_overflow_int_are_named()
    {
        var e = Bad(Llama(c => { c["num_attention_heads"] = 100_000; c["num_key_value_heads"] = 100_000; c["head_dim"] = 100_000; }));
        Assert.Contains("head_dim", e.Field);
    }

    [Fact]
    public void Malformed_rope_scaling_is_named()
    {
        Assert.Contains("rope_scaling", Bad(Llama(c => c["rope_scaling"] = "linear")).Field);
        Assert.Contains("rope_scaling", Bad(Llama(c => c["rope_scaling"] = new JsonObject { ["factor"] = 2.0 })).Field);
        Assert.Contains("factor", Bad(Llama(c => c["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = -2.0 })).Field);
    }
}
