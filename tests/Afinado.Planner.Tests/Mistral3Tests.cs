using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests;

/// <summary>
/// Mistral Small 3.1 (mistral3) as transformers' models/mistral3 and models/pixtral build it. Mistral lists the model as
/// 24B; the text decoder's tensors and the Pixtral tower + projector are checked against independent arithmetic over the
/// config's widths (23,572,403,200 + 438,958,080, the split a meta-device count of the checkpoint gives).
/// </summary>
public class Mistral3Tests
{
    private const string Id = "mistralai/Mistral-Small-3.1-24B-Instruct-2503";
    private static readonly ModelArchitecture Small = ModelCatalog.Get(Id);

    [Fact]
    public void Counts_split_into_the_mistral_decoder_and_the_pixtral_tower()
    {
        long h = 5120, layer = h * 4096 + 2 * h * 1024 + 4096 * h + 3 * h * 32768 + 2 * h;
        long text = 40 * layer + 2 * 131072L * h + h;
        long v = 1024, vLayer = 2 * v + 3 * v * 4096 + 4 * v * v;
        long vision = v * 3 * 14 * 14 + v + 24 * vLayer + v + 4 * v * v + v * h + h * h;
        Assert.Equal(23_572_403_200, text);
        Assert.Equal(438_958_080, vision);
        Assert.Equal(text, Small.Tensors.Where(t => t.Role != TensorRole.Vision).Sum(t => t.Elements));
        Assert.Equal(vision, Small.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements));
        Assert.Equal(24.0, Math.Round(Small.ParameterCount / 1e9, 1));
    }

    [Fact]
    public void Hub_names_and_what_lora_targets()
    {
        ParameterTensor T(string name) => Assert.Single(Small.Tensors, t => t.Name == name);
        Assert.Equal([1024L, 3, 14, 14], T("vision_tower.patch_conv.weight").Shape);
        Assert.Equal([1024L, 4096], T("multi_modal_projector.patch_merger.merging_layer.weight").Shape);
        Assert.Equal([5120L, 1024], T("multi_modal_projector.linear_1.weight").Shape);
        Assert.DoesNotContain(Small.Tensors, t => t.Name == "multi_modal_projector.linear_1.bias");
        Assert.Equal([4096L, 5120], T("language_model.model.layers.39.self_attn.q_proj.weight").Shape);
        Assert.Equal([131072L, 5120], T("language_model.lm_head.weight").Shape);
        Assert.Equal(40 * 7 + 1, Small.Linears.Count);
        Assert.Null(Small.SlidingWindow);
        var plan = Planner.Fit.Planner.Create(Small, new Job { Method = TrainingMethod.QLora, Checkpointing = Checkpointing.Full }, []);
        Assert.Equal(438_958_080, ModelProfile.Create(plan.Selection).VisionFrozen);
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        JsonObject Node() => JsonNode.Parse(ModelCatalog.ConfigJson(Id))!.AsObject();
        var type = Node();
        type["vision_config"]!["model_type"] = "siglip_vision_model";
        Assert.Contains("vision_config.model_type", Assert.Throws<InputError>(() => HfConfigReader.Parse(type.ToJsonString(), "config.json")).Message);
        var none = Node();
        none.Remove("text_config");
        Assert.Contains("text_config", Assert.Throws<InputError>(() => HfConfigReader.Parse(none.ToJsonString(), "config.json")).Message);
        // Several feature layers are concatenated before linear_1: its input widens.
        var multi = Node();
        multi["vision_feature_layer"] = new JsonArray(-1, -2);
        var two = HfConfigReader.Parse(multi.ToJsonString(), "config.json");
        Assert.Equal([5120L, 2048], Assert.Single(two.Tensors, t => t.Name == "multi_modal_projector.linear_1.weight").Shape);
    }
}
