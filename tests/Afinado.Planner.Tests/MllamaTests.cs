using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// Llama 3.2 Vision (mllama) as transformers' models/mllama builds it. Meta's model card: the 11B and 90B models are
/// Llama 3.1 8B and 70B text models, unchanged, plus cross-attention adapter layers and a vision encoder; 10.6B and 88.8B
/// parameters in all. The gated repositories' config.json has no offline copy, so the configs here are written from the
/// published widths (text: Llama 3.1's, cross-attention every fifth layer from 3; vision: 32 + 8 layers of 1280,
/// 560-pixel tiles of 14-pixel patches, 4 tiles, 8 aspect ratios, 7680-wide output).
/// </summary>
public class MllamaTests
{
    private static ModelArchitecture Config(int hidden, int layers, int heads, int inter, Action<JsonObject>? edit = null)
    {
        var ratios = new JsonArray();
        foreach (var (w, h) in new[] { (1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (3, 1), (4, 1) }) ratios.Add(new JsonArray(w, h));
        var node = new JsonObject
        {
            ["model_type"] = "mllama",
            ["text_config"] = new JsonObject
            {
                ["model_type"] = "mllama_text_model", ["hidden_size"] = hidden, ["num_hidden_layers"] = layers,
                ["num_attention_heads"] = heads, ["num_key_value_heads"] = 8, ["intermediate_size"] = inter, ["vocab_size"] = 128256,
                ["cross_attention_layers"] = new JsonArray(Enumerable.Range(0, layers / 5).Select(i => (JsonNode?)(3 + 5 * i)).ToArray()),
                ["rope_theta"] = 500000.0,
                ["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192 },
            },
            ["vision_config"] = new JsonObject
            {
                ["model_type"] = "mllama_vision_model", ["hidden_size"] = 1280, ["intermediate_size"] = 5120, ["num_hidden_layers"] = 32,
                ["num_global_layers"] = 8, ["attention_heads"] = 16, ["image_size"] = 560, ["patch_size"] = 14, ["max_num_tiles"] = 4,
                ["supported_aspect_ratios"] = ratios, ["vision_output_dim"] = 7680,
            },
        };
        edit?.Invoke(node);
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    private static readonly ModelArchitecture Vision11B = Config(4096, 40, 32, 14336);
    private static readonly ModelArchitecture Vision90B = Config(8192, 100, 64, 28672);

    private static long Sum(ModelArchitecture a, Func<ParameterTensor, bool> where) => a.Tensors.Where(where).Sum(t => t.Elements);
    private static bool IsCross(ParameterTensor t) => t.Name.Contains(".cross_attn", StringComparison.Ordinal) || (t.Layer is null && t.Name.StartsWith("language_model.model.layers.", StringComparison.Ordinal));

    [Theory]
    [InlineData(4096, 40, 32, 14336, "meta-llama/Llama-3.1-8B", 10.6)]
    [InlineData(8192, 100, 64, 28672, "meta-llama/Llama-3.1-70B", 88.8)]
    public void The_text_model_is_llama_3_1_plus_cross_attention_layers(int hidden, int layers, int heads, int inter, string textModel, double card)
    {
        var a = Config(hidden, layers, heads, inter);
        int cross = layers / 5;
        Assert.Equal(layers - cross, a.NumLayers);
        Assert.Equal(cross, a.CrossAttentionLayers);
        // Everything but the cross-attention layers, the vision tower and the 8 added embedding rows is Llama 3.1's.
        long decoder = Sum(a, t => t.Role != TensorRole.Vision && !IsCross(t)) - 8L * hidden;
        Assert.Equal(ModelCatalog.Get(textModel).ParameterCount, decoder);
        // A cross-attention layer: q/k/v/o, head_dim-wide q/k norms, two norms, two gates, the MLP.
        long kv = 8L * 128;
        long perCross = 2L * hidden * hidden + 2 * hidden * kv + 2 * 128 + 2L * hidden + 2 + 3L * hidden * inter;
        Assert.Equal(cross * perCross, Sum(a, IsCross));
        // The vision encoder: ViT-H/14 (32 layers) + 8 gated layers, ≈ 0.84B with its embeddings; the projector 7680 → hidden.
        long vLayer = 4L * 1280 * 1280 + (1280L * 5120 + 5120) + (5120L * 1280 + 1280) + 4 * 1280;
        long patches = 40 * 40 + 1;
        long embeddings = 1280L * 3 * 14 * 14 + 1280 + patches * 1280 + 1 + 9 * 4 * patches * 1280 + 2 * (9 * 4 * 1280 + 1) + 4 * 1280;
        Assert.Equal(embeddings + 40 * vLayer + 8 * 2 + 7680L * hidden + hidden, Sum(a, t => t.Role == TensorRole.Vision));
        // Meta's card rounds the totals (10.6B, 88.8B); the tensors sum to 10.67B and 88.59B.
        Assert.InRange(a.ParameterCount / (card * 1e9), 0.995, 1.01);
    }

    [Fact]
    public void A_text_step_runs_only_the_self_attention_layers()
    {
        // The same LoRA job on Llama 3.1 8B and on the 11B Vision model saves the same activations: the cross-attention
        // layers are skipped without images, and the vision tower is frozen memory.
        var job = new Job { Method = TrainingMethod.Lora, Seq = 2048 };
        var vision = Planner.Fit.Planner.Create(Vision11B, job, []).Ledger;
        var text = Planner.Fit.Planner.Create(ModelCatalog.Get("meta-llama/Llama-3.1-8B"), job, []).Ledger;
        foreach (var kind in new[] { LineKind.ActivationsMlp, LineKind.ActivationsAttentionCore, LineKind.ActivationsNorms })
            Assert.Equal(text.Line(kind).Bytes, vision.Line(kind).Bytes);
        // PEFT's all-linear adapts the cross-attention projections too (they count as adapters, no activations).
        Assert.Contains(Vision11B.Linears, l => l.Module.EndsWith("layers.3.cross_attn.q_proj", StringComparison.Ordinal));
        Assert.DoesNotContain(Vision11B.Linears, l => l.Module.StartsWith("vision_model", StringComparison.Ordinal));
        // The KV cache holds the 32 self-attention layers' tokens.
        Assert.Equal(32L * 8 * 128 * 2 * 2, Vision11B.KvBytesPerToken(2));
        Assert.NotNull(Afinado.Planner.Allocator.ReservedMemory.NotReplayed(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(Vision11B, job)), job));
        // Image inputs (the tiles' tower and the cross-attention layers they feed) are refused, naming the flag.
        var images = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(Vision11B, job with { Images = 1 }, []));
        Assert.Equal("images", images.Parameter?.Name);
        Assert.Contains("not planned", images.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        Assert.Contains("cross_attention_layers", Assert.Throws<InputError>(() => Config(4096, 40, 32, 14336,
            n => n["text_config"]!["cross_attention_layers"] = new JsonArray(3, 40))).Message);
        Assert.Contains("vision_config", Assert.Throws<InputError>(() => Config(4096, 40, 32, 14336, n => n.Remove("vision_config"))).Message);
        Assert.Contains("attention_heads", Assert.Throws<InputError>(() => Config(4096, 40, 32, 14336, n => n["vision_config"]!["attention_heads"] = 7)).Message);
        Assert.Contains("cross_attention_layers", Assert.Throws<InputError>(() => Config(4096, 10, 32, 14336,
            n => n["text_config"]!["cross_attention_layers"] = new JsonArray(Enumerable.Range(0, 10).Select(i => (JsonNode?)i).ToArray()))).Message);
    }
}
