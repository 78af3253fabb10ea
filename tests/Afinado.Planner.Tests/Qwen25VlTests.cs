using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// Qwen2.5-VL as transformers' models/qwen2_5_vl builds it: a qwen2 decoder plus the windowed vision transformer and its
/// patch merger. Published sizes (the Hugging Face model pages' parameter counts): Qwen2.5-VL-3B-Instruct 3.75B,
/// Qwen2.5-VL-7B-Instruct 8.29B, Qwen2.5-VL-72B-Instruct 73.4B; their decoders are Qwen2.5-3B / 7B / 72B
/// (3.09B / 7.62B / 72.7B).
/// </summary>
public class Qwen25VlTests
{
    private const string Id = "Qwen/Qwen2.5-VL-7B-Instruct";
    private static readonly ModelArchitecture Vl7 = ModelCatalog.Get(Id);

    /// <summary>The 7B config with the other sizes' decoder widths (their vision transformers are the same but for the merger's output).</summary>
    private static ModelArchitecture Sized(int hidden, int layers, int heads, int kv, int inter, int vocab, bool tied)
    {
        var n = JsonNode.Parse(ModelCatalog.ConfigJson(Id))!.AsObject();
        n["hidden_size"] = hidden;
        n["num_hidden_layers"] = layers;
        n["num_attention_heads"] = heads;
        n["num_key_value_heads"] = kv;
        n["intermediate_size"] = inter;
        n["vocab_size"] = vocab;
        n["tie_word_embeddings"] = tied;
        n["vision_config"]!["out_hidden_size"] = hidden;
        return HfConfigReader.Parse(n.ToJsonString(), "config.json");
    }

    private static long Vision(ModelArchitecture a) => a.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements);

    [Fact]
    public void Seven_b_lists_the_hub_tensors()
    {
        Assert.Equal([1280L, 3, 2, 14, 14], Assert.Single(Vl7.Tensors, t => t.Name == "visual.patch_embed.proj.weight").Shape);
        Assert.Equal([3840L, 1280], Assert.Single(Vl7.Tensors, t => t.Name == "visual.blocks.31.attn.qkv.weight").Shape);
        Assert.Equal([3420L], Assert.Single(Vl7.Tensors, t => t.Name == "visual.blocks.0.mlp.up_proj.bias").Shape);
        Assert.Equal([5120L, 5120], Assert.Single(Vl7.Tensors, t => t.Name == "visual.merger.mlp.0.weight").Shape);
        Assert.Equal([3584L, 5120], Assert.Single(Vl7.Tensors, t => t.Name == "visual.merger.mlp.2.weight").Shape);
        Assert.Equal([512L], Assert.Single(Vl7.Tensors, t => t.Name == "model.layers.27.self_attn.k_proj.bias").Shape);
        Assert.Equal([152064L, 3584], Assert.Single(Vl7.Tensors, t => t.Name == "lm_head.weight").Shape);
        Assert.Equal("qwen2_5_vl", Vl7.ModelType);
        // The vision transformer is frozen memory: LoRA targets are the decoder's seven linears per layer and nothing visual.
        Assert.Equal(28 * 7 + 1, Vl7.Linears.Count);
    }

    [Fact]
    public void Totals_match_the_published_sizes()
    {
        Assert.Equal(8.29, Math.Round(Vl7.ParameterCount / 1e9, 2));
        Assert.Equal(7.62, Math.Round((Vl7.ParameterCount - Vision(Vl7)) / 1e9, 2));
        var vl3 = Sized(2048, 36, 16, 2, 11008, 151936, tied: true);
        Assert.Equal(3.75, Math.Round(vl3.ParameterCount / 1e9, 2));
        Assert.Equal(3.09, Math.Round((vl3.ParameterCount - Vision(vl3)) / 1e9, 2));
        var vl72 = Sized(8192, 80, 64, 8, 29568, 152064, tied: false);
        Assert.Equal(73.4, Math.Round(vl72.ParameterCount / 1e9, 1));
        // Vision: patch embedding, 32 blocks, merger (its output as wide as the decoder).
        long blocks = 32 * (2 * 1280 + (1280L * 3840 + 3840) + (1280L * 1280 + 1280) + 2 * (1280L * 3420 + 3420) + (3420L * 1280 + 1280));
        Assert.Equal(1280L * 3 * 2 * 14 * 14 + blocks + 1280 + (5120L * 5120 + 5120) + (5120L * 3584 + 3584), Vision(Vl7));
    }

    [Fact]
    public void Plans_treat_the_vision_tower_as_frozen_weights()
    {
        var lora = Planner.Fit.Planner.Create(Vl7, new Job { Method = TrainingMethod.Lora, Seq = 2048 }, []);
        Assert.Equal(0, lora.Selection.TrainableBaseParameters);
        Assert.Equal(Vision(Vl7), ModelProfile.Create(lora.Selection).VisionFrozen);
        var infer = Planner.Fit.Planner.Create(Vl7, new Job { Task = JobTask.Infer, Seq = 1024 }, []);
        Assert.True(infer.Ledger.TotalBytes > 2 * Vl7.ParameterCount);
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        JsonObject Node() => JsonNode.Parse(ModelCatalog.ConfigJson(Id))!.AsObject();
        var wide = Node();
        wide["vision_config"]!["out_hidden_size"] = 4096;
        Assert.Contains("out_hidden_size", Assert.Throws<InputError>(() => HfConfigReader.Parse(wide.ToJsonString(), "config.json")).Message);
        var none = Node();
        none.Remove("vision_config");
        Assert.Contains("vision_config", Assert.Throws<InputError>(() => HfConfigReader.Parse(none.ToJsonString(), "config.json")).Message);
        var heads = Node();
        heads["vision_config"]!["num_heads"] = 7;
        Assert.Contains("num_heads", Assert.Throws<InputError>(() => HfConfigReader.Parse(heads.ToJsonString(), "config.json")).Message);
        // transformers ≥ 4.53 nests the decoder in text_config: the same model.
        var nested = Node();
        var text = new JsonObject();
        foreach (var key in new[] { "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size", "tie_word_embeddings", "rms_norm_eps", "rope_theta" })
        {
            text[key] = nested[key]!.DeepClone();
            nested.Remove(key);
        }
        nested["text_config"] = text;
        Assert.Equal(Vl7.ParameterCount, HfConfigReader.Parse(nested.ToJsonString(), "config.json").ParameterCount);
    }
}
