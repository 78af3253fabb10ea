using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests;

/// <summary>
/// Qwen3-VL as transformers' models/qwen3_vl builds it: a qwen3 decoder under <c>model.language_model</c> plus the
/// vision model with its patch merger and deepstack mergers. The decoders are Qwen3-4B and Qwen3-8B exactly (Qwen's
/// Qwen3-VL report: the LLM is initialised from Qwen3); the totals are those Hugging Face lists, 4.44B and 8.77B.
/// </summary>
public class Qwen3VlTests
{
    private const string Id = "Qwen/Qwen3-VL-4B-Instruct";
    private static readonly ModelArchitecture Vl4 = ModelCatalog.Get(Id);

    /// <summary>Qwen3-VL-8B-Instruct: the 4B config with the 8B's published decoder and vision widths.</summary>
    private static ModelArchitecture Vl8()
    {
        var n = JsonNode.Parse(ModelCatalog.ConfigJson(Id))!.AsObject();
        var text = n["text_config"]!.AsObject();
        text["hidden_size"] = 4096;
        text["intermediate_size"] = 12288;
        text["tie_word_embeddings"] = false;
        n["tie_word_embeddings"] = false;
        var v = n["vision_config"]!.AsObject();
        v["depth"] = 27;
        v["hidden_size"] = 1152;
        v["intermediate_size"] = 4304;
        v["out_hidden_size"] = 4096;
        v["deepstack_visual_indexes"] = new JsonArray(8, 16, 24);
        return HfConfigReader.Parse(n.ToJsonString(), "config.json");
    }

    private static long Decoder(ModelArchitecture a) => a.Tensors.Where(t => t.Role != TensorRole.Vision).Sum(t => t.Elements);

    [Fact]
    public void Four_b_lists_the_hub_tensors()
    {
        ParameterTensor T(string name) => Assert.Single(Vl4.Tensors, t => t.Name == name);
        Assert.Equal([1024L, 3, 2, 16, 16], T("model.visual.patch_embed.proj.weight").Shape);
        Assert.Equal([1024L], T("model.visual.patch_embed.proj.bias").Shape);
        Assert.Equal([2304L, 1024], T("model.visual.pos_embed.weight").Shape);
        Assert.Equal([3072L, 1024], T("model.visual.blocks.23.attn.qkv.weight").Shape);
        Assert.Equal([1024L], T("model.visual.merger.norm.weight").Shape);
        Assert.Equal([4096L], T("model.visual.deepstack_merger_list.2.norm.bias").Shape);
        Assert.Equal([2560L, 4096], T("model.visual.deepstack_merger_list.0.linear_fc2.weight").Shape);
        Assert.Equal([128L], T("model.language_model.layers.35.self_attn.k_norm.weight").Shape);
        Assert.DoesNotContain(Vl4.Tensors, t => t.Name == "lm_head.weight");
        Assert.Equal(36 * 7, Vl4.Linears.Count(l => !l.Module.StartsWith("model.visual", StringComparison.Ordinal)));
        Assert.DoesNotContain(Vl4.Linears, l => l.Module.StartsWith("model.visual", StringComparison.Ordinal));
    }

    [Fact]
    public void The_decoders_are_qwen3_and_the_totals_match_the_published_sizes()
    {
        Assert.Equal(ModelCatalog.Get("Qwen/Qwen3-4B").ParameterCount, Decoder(Vl4));
        Assert.Equal(4.44, Math.Round(Vl4.ParameterCount / 1e9, 2));
        var vl8 = Vl8();
        Assert.Equal(ModelCatalog.Get("Qwen/Qwen3-8B").ParameterCount, Decoder(vl8));
        Assert.Equal(8.77, Math.Round(vl8.ParameterCount / 1e9, 2));
        // Vision of the 4B: patch embedding with bias, positions, 24 blocks, the merger and three deepstack mergers.
        long block = 4 * 1024 + (1024L * 3072 + 3072) + (1024L * 1024 + 1024) + (1024L * 4096 + 4096) + (4096L * 1024 + 1024);
        long merger = (4096L * 4096 + 4096) + (4096L * 2560 + 2560);
        long vision = 1024L * 3 * 2 * 16 * 16 + 1024 + 2304L * 1024 + 24 * block + (2 * 1024 + merger) + 3 * (2 * 4096 + merger);
        Assert.Equal(vision, Vl4.ParameterCount - Decoder(Vl4));
    }

    [Fact]
    public void Lora_plans_the_decoder_and_holds_the_vision_model_frozen()
    {
        var plan = Planner.Fit.Planner.Create(Vl4, new Job { Method = TrainingMethod.Lora, Seq = 2048 }, []);
        Assert.Equal(Vl4.ParameterCount - Decoder(Vl4), ModelProfile.Create(plan.Selection).VisionFrozen);
        Assert.Equal(0, plan.Selection.TrainableBaseParameters);
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        JsonObject Node() => JsonNode.Parse(ModelCatalog.ConfigJson(Id))!.AsObject();
        var wide = Node();
        wide["vision_config"]!["out_hidden_size"] = 4096;
        Assert.Contains("out_hidden_size", Assert.Throws<InputError>(() => HfConfigReader.Parse(wide.ToJsonString(), "config.json")).Message);
        var deep = Node();
        deep["vision_config"]!["deepstack_visual_indexes"] = new JsonArray(30);
        Assert.Contains("deepstack_visual_indexes", Assert.Throws<InputError>(() => HfConfigReader.Parse(deep.ToJsonString(), "config.json")).Message);
        var type = Node();
        type["text_config"]!["model_type"] = "qwen2";
        Assert.Contains("text_config.model_type", Assert.Throws<InputError>(() => HfConfigReader.Parse(type.ToJsonString(), "config.json")).Message);
    }
}
