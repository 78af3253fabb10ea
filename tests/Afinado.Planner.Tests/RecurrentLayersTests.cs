using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Safetensors;
using Afinado.TestSupport;

namespace Afinado.Planner.Tests;

/// <summary>
/// Linear-attention and state-space hybrids (Qwen3-Next, Jamba, Falcon-H1, Granite 4, Nemotron-H, LFM2, RecurrentGemma)
/// are refused by name, whichever route reaches them: a family's layer_types, a config the catalog does not know, or a
/// checkpoint read from its headers — which used to plan them as if every layer attended (a KV cache for layers that keep
/// a recurrent state) under a warning that named only "layer_types". inspect still reads their headers.
/// </summary>
public sealed class RecurrentLayersTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-recurrent-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const int Hidden = 128, Layers = 4, Vocab = 500, Inter = 256;

    /// <summary>Qwen3-Next's layout: Gated DeltaNet layers (linear_attn.*) between softmax-attention layers.</summary>
    private static IEnumerable<(string, string, long[])> Hybrid(bool linearTensors)
    {
        yield return ("model.embed_tokens.weight", "BF16", [Vocab, Hidden]);
        for (int i = 0; i < Layers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return (p + "input_layernorm.weight", "BF16", [Hidden]);
            if (i % 2 == 0 && linearTensors)
            {
                yield return (p + "linear_attn.in_proj_qkvz.weight", "BF16", [4 * Hidden, Hidden]);
                yield return (p + "linear_attn.A_log", "F32", [8]);
                yield return (p + "linear_attn.out_proj.weight", "BF16", [Hidden, 2 * Hidden]);
            }
            else
            {
                yield return (p + "self_attn.q_proj.weight", "BF16", [Hidden, Hidden]);
                yield return (p + "self_attn.k_proj.weight", "BF16", [Hidden, Hidden]);
                yield return (p + "self_attn.v_proj.weight", "BF16", [Hidden, Hidden]);
                yield return (p + "self_attn.o_proj.weight", "BF16", [Hidden, Hidden]);
            }
            yield return (p + "post_attention_layernorm.weight", "BF16", [Hidden]);
            yield return (p + "mlp.gate_proj.weight", "BF16", [Inter, Hidden]);
            yield return (p + "mlp.up_proj.weight", "BF16", [Inter, Hidden]);
            yield return (p + "mlp.down_proj.weight", "BF16", [Hidden, Inter]);
        }
        yield return ("model.norm.weight", "BF16", [Hidden]);
        yield return ("lm_head.weight", "BF16", [Vocab, Hidden]);
    }

    private string Folder(string name, Action<JsonObject> edit, bool linearTensors = true)
    {
        var config = new JsonObject
        {
            ["model_type"] = "qwen3_next", ["hidden_size"] = Hidden, ["num_hidden_layers"] = Layers, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 4, ["vocab_size"] = Vocab, ["intermediate_size"] = Inter,
        };
        edit(config);
        string dir = Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), Hybrid(linearTensors));
        return dir;
    }

    private static JsonArray Types(params string[] kinds) => new([.. kinds.Select(k => (JsonNode)k)]);

    [Fact]
    public void A_checkpoint_read_from_its_headers_is_refused_by_its_layer_types()
    {
        var dir = Folder("next", c => c["layer_types"] = Types("linear_attention", "full_attention", "linear_attention", "full_attention"));
        var e = Assert.Throws<InputError>(() => ModelSource.Resolve(dir));
        Assert.EndsWith("layer_types", e.Field);
        Assert.Contains("2 of its 4 layers are \"linear_attention\"", e.Problem);
        Assert.Contains("not modelled", e.Problem);
        Assert.Contains("afinado inspect", e.Fix);
    }

    [Fact]
    public void Without_layer_types_the_config_keys_or_the_tensor_names_give_it_away()
    {
        var byKey = Assert.Throws<InputError>(() => ModelSource.Resolve(Folder("keys", c => c["linear_num_value_heads"] = 8)));
        Assert.EndsWith("linear_num_value_heads", byKey.Field);
        var byTensor = Assert.Throws<InputError>(() => ModelSource.Resolve(Folder("tensors", _ => { })));
        Assert.Contains("model.layers.0.linear_attn.", byTensor.Field);
        // The same checkpoint without those layers is the ordinary generic decoder.
        var plain = ModelSource.Resolve(Folder("plain", _ => { }, linearTensors: false));
        Assert.Equal(ModelSupport.Generic, plain.Support);
    }

    [Theory]
    [InlineData("jamba", "attn_layer_period", 8)]
    [InlineData("falcon_h1", "mamba_d_ssm", 1024)]
    [InlineData("nemotron_h", "hybrid_override_pattern", "M-M*")]
    public void A_hybrid_config_without_a_checkpoint_says_why_rather_than_asking_for_one(string modelType, string key, object value)
    {
        var node = new JsonObject { ["model_type"] = modelType, ["hidden_size"] = Hidden, ["num_hidden_layers"] = Layers, ["num_attention_heads"] = 4, ["vocab_size"] = Vocab };
        node[key] = JsonValue.Create(value);
        var e = Assert.Throws<InputError>(() => HfConfigReader.Parse(node.ToJsonString(), "config.json"));
        Assert.EndsWith(key, e.Field);
        Assert.Contains("state-space", e.Problem);
        Assert.DoesNotContain("safetensors files", e.Fix);
    }

    [Fact]
    public void A_known_family_names_a_linear_attention_layer_type_as_such()
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("Qwen/Qwen3-0.6B"))!.AsObject();
        int layers = node["num_hidden_layers"]!.GetValue<int>();
        node["layer_types"] = Types([.. Enumerable.Range(0, layers).Select(i => i % 4 == 3 ? "full_attention" : "linear_attention")]);
        var e = Assert.Throws<InputError>(() => HfConfigReader.Parse(node.ToJsonString(), "config.json"));
        Assert.EndsWith("layer_types", e.Field);
        Assert.Contains($"{layers - layers / 4} of its {layers} layers are \"linear_attention\"", e.Problem);
    }

    [Fact]
    public void Inspect_still_reads_the_headers_and_says_why_the_config_was_not_compared()
    {
        var dir = Folder("inspect", c => c["layer_types"] = Types("linear_attention", "full_attention", "linear_attention", "full_attention"));
        var result = CheckpointInspection.Run(dir);
        Assert.Null(result.Comparison);
        Assert.True(result.Consistent);
        Assert.StartsWith("layer_types: 2 of its 4 layers", result.ConfigNotCompared);
        long elements = Hybrid(true).Sum(t => t.Item3.Aggregate(1L, (x, y) => x * y));
        Assert.Equal(elements, result.Checkpoint.TotalElements);
        var json = new StringWriter();
        InspectJson.Write(json, result.Checkpoint, result.ConfigSource, result.Architecture, result.Comparison, result.ConfigNotCompared);
        Assert.Contains("\"config_not_compared\"", json.ToString());
    }
}
