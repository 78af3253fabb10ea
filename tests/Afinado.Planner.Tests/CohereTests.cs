using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// Cohere's Command models as transformers' models/cohere and models/cohere2 build them. No hub config.json of these
/// gated repositories is available offline, so each test writes the config from the widths the model pages publish
/// (hidden, layers, heads, kv heads, intermediate, vocab 256,000, tied embeddings) and checks the totals the publisher
/// states: Command R (c4ai-command-r-v01) 35B, Command R 08-2024 32.3B, Command R+ 104B, Command R7B 8.03B,
/// Command A (command-a-03-2025) 111B.
/// </summary>
public class CohereTests
{
    private static ModelArchitecture Config(string type, int hidden, int layers, int heads, int kvHeads, int inter, Action<JsonObject>? edit = null)
    {
        var node = new JsonObject
        {
            ["model_type"] = type,
            ["hidden_size"] = hidden,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = kvHeads,
            ["intermediate_size"] = inter,
            ["vocab_size"] = 256000,
            ["layer_norm_eps"] = 1e-5,
            ["logit_scale"] = 0.0625,
            ["tie_word_embeddings"] = true,
        };
        edit?.Invoke(node);
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    private static readonly ModelArchitecture CommandR7B = Config("cohere2", 4096, 32, 32, 8, 14336, n => { n["sliding_window"] = 4096; n["sliding_window_pattern"] = 4; });

    [Theory]
    [InlineData("cohere", 8192, 40, 64, 64, 22528, false, 35.0)]       // c4ai-command-r-v01
    [InlineData("cohere", 8192, 40, 64, 8, 24576, false, 32.3)]        // c4ai-command-r-08-2024
    [InlineData("cohere", 12288, 64, 96, 8, 33792, true, 104.0)]       // c4ai-command-r-plus (use_qk_norm)
    [InlineData("cohere2", 4096, 32, 32, 8, 14336, false, 8.03)]       // c4ai-command-r7b-12-2024
    [InlineData("cohere2", 12288, 64, 96, 8, 36864, false, 111.0)]     // command-a-03-2025
    public void Totals_match_the_published_sizes(string type, int hidden, int layers, int heads, int kv, int inter, bool qkNorm, double billions)
    {
        var a = Config(type, hidden, layers, heads, kv, inter, n => { if (qkNorm) n["use_qk_norm"] = true; });
        long headDim = hidden / heads;
        long perLayer = 2L * hidden * hidden + 2L * hidden * kv * headDim + 3L * hidden * inter + hidden
            + (qkNorm ? (heads + kv) * headDim : 0);
        Assert.Equal(layers * perLayer + 256000L * hidden + hidden, a.ParameterCount);
        int digits = billions < 10 ? 2 : billions % 1 == 0 ? 0 : 1;
        Assert.Equal(billions, Math.Round(a.ParameterCount / 1e9, digits));
    }

    [Fact]
    public void One_norm_feeds_attention_and_mlp_in_parallel()
    {
        Assert.True(CommandR7B.ParallelResidual);
        Assert.Equal(1, CommandR7B.NormsPerLayer);
        Assert.Equal(NormKind.LayerNorm, CommandR7B.Norm);
        Assert.False(CommandR7B.FusedLayerNorm);
        Assert.DoesNotContain(CommandR7B.Tensors, t => t.Name.EndsWith("layernorm.bias", StringComparison.Ordinal));
        Assert.DoesNotContain(CommandR7B.Tensors, t => t.Name == "lm_head.weight");
        Assert.Equal(16, CommandR7B.LogitsScaling);
        // q, k, v, o, gate, up, down per layer; the per-head q/k norms of Command R+ are norms, not LoRA targets.
        Assert.Equal(32 * 7, CommandR7B.Linears.Count);
        var plus = Config("cohere", 12288, 2, 96, 8, 33792, n => n["use_qk_norm"] = true);
        Assert.Equal([96L, 128], Assert.Single(plus.Tensors, t => t.Name == "model.layers.0.self_attn.q_norm.weight").Shape);
        Assert.Equal([8L, 128], Assert.Single(plus.Tensors, t => t.Name == "model.layers.1.self_attn.k_norm.weight").Shape);
        Assert.Equal(2 * 7, plus.Linears.Count);
        Assert.True(plus.QkNorm);
    }

    [Fact]
    public void Command_r7b_slides_three_layers_of_four_and_caches_the_window()
    {
        Assert.Equal(4096, CommandR7B.SlidingWindow);
        Assert.All(Enumerable.Range(0, 32), i => Assert.Equal((i + 1) % 4 != 0, CommandR7B.IsSlidingLayer(i)));
        var plan = Planner.Fit.Planner.Create(CommandR7B, new Job { Task = JobTask.Infer, Seq = 1024, Context = 32768, KvCache = KvCacheKind.Static }, []);
        double perToken = 8 * 128 * 2 * 2;
        Assert.Equal(perToken * (8 * 32768 + 24 * 4096), plan.Ledger.Line(LineKind.KvCacheFullContext).Bytes, tolerance: 1);
        // Cohere (v1) has no sliding layers.
        Assert.Equal(0, Config("cohere", 4096, 4, 32, 8, 14336).SlidingLayerCount);
    }

    [Fact]
    public void The_hand_written_fp32_layer_norm_saves_what_an_rms_norm_saves()
    {
        // CohereLayerNorm upcasts to fp32 by hand: autograd keeps fp32 intermediates (4 B per element for the input's
        // gradient), not the fused LayerNorm's input in the compute dtype.
        var job = new Job { Method = TrainingMethod.Full, Seq = 1024 };
        double Norms(ModelArchitecture a) => Planner.Fit.Planner.Create(a, job, []).Ledger.Line(LineKind.ActivationsNorms).Bytes;
        var fused = CommandR7B with { NormUpcastsToFp32 = false };
        Assert.True(Norms(CommandR7B) > Norms(fused));
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        Assert.Contains("logit_scale", Assert.Throws<InputError>(() => Config("cohere", 4096, 4, 32, 8, 14336, n => n["logit_scale"] = 0)).Message);
        Assert.Contains("num_key_value_heads", Assert.Throws<InputError>(() => Config("cohere2", 4096, 4, 32, 7, 14336)).Message);
        Assert.Contains("layer_types", Assert.Throws<InputError>(() => Config("cohere2", 4096, 4, 32, 8, 14336, n => n["layer_types"] = new JsonArray("full_attention"))).Message);
        Assert.Contains("intermediate_size", Assert.Throws<InputError>(() => Config("cohere", 4096, 4, 32, 8, 14336, n => n.Remove("intermediate_size"))).Message);
    }
}
