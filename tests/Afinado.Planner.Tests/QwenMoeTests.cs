using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// qwen2_moe / qwen3_moe layouts against transformers' modeling_qwen2_moe.py and modeling_qwen3_moe.py: which layers are
/// sparse, the shared expert, and which parameters a token touches. Expected values are derived from the config's widths.
/// </summary>
public class QwenMoeTests
{
    private const string Qwen2Moe = "Qwen/Qwen1.5-MoE-A2.7B-Chat";
    private const string Qwen3Moe = "Qwen/Qwen3-30B-A3B";

    private static ModelArchitecture Edited(string id, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(id))!.AsObject();
        edit(node);
        return HfConfigReader.Parse(node.ToJsonString(), "cfg.json");
    }

    private static bool Has(ModelArchitecture a, string name) => a.Tensors.Any(t => t.Name == name);

    [Fact]
    public void Qwen2_moe_layer_has_router_sixty_experts_a_shared_expert_and_its_gate()
    {
        var a = ModelCatalog.Get(Qwen2Moe);
        Assert.Equal([60L, 2048], a.Tensors.Single(t => t.Name == "model.layers.0.mlp.gate.weight").Shape);
        Assert.Equal([1408L, 2048], a.Tensors.Single(t => t.Name == "model.layers.0.mlp.experts.59.gate_proj.weight").Shape);
        Assert.Equal([2048L, 5632], a.Tensors.Single(t => t.Name == "model.layers.23.mlp.shared_expert.down_proj.weight").Shape);
        Assert.Equal([1L, 2048], a.Tensors.Single(t => t.Name == "model.layers.23.mlp.shared_expert_gate.weight").Shape);
        Assert.False(Has(a, "model.layers.0.mlp.gate.bias"));
        Assert.False(Has(a, "model.layers.0.mlp.experts.60.gate_proj.weight"));
        // q/k/v biased, o not (Qwen2MoeAttention).
        Assert.True(Has(a, "model.layers.0.self_attn.q_proj.bias"));
        Assert.False(Has(a, "model.layers.0.self_attn.o_proj.bias"));
        // The shared expert and its gate run for every token: never tagged as a routed expert.
        Assert.All(a.Tensors.Where(t => t.Name.Contains("shared_expert")), t => Assert.Null(t.Expert));
        Assert.Equal((60, 4, 1408), (a.NumExperts, a.ExpertsPerToken, a.ExpertWidth));
    }

    [Theory]
    [InlineData(Qwen2Moe)]
    [InlineData(Qwen3Moe)]
    public void Active_parameters_drop_exactly_the_unrouted_experts(string id)
    {
        var a = ModelCatalog.Get(id);
        int sparseLayers = a.Tensors.Where(t => t.Name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal)).Count();
        Assert.Equal(a.NumLayers, sparseLayers);
        // Each routed expert is gate, up and down: 3 · hidden · moe_intermediate_size, no biases.
        long unusedExperts = (long)sparseLayers * (a.NumExperts - a.ExpertsPerToken) * 3 * a.HiddenSize * a.ExpertWidth;
        Assert.Equal(a.ParameterCount - unusedExperts, a.ActiveParameterCount);
    }

    [Fact]
    public void Qwen3_moe_has_per_head_qk_norms_no_bias_and_no_shared_expert()
    {
        var a = ModelCatalog.Get(Qwen3Moe);
        Assert.True(a.QkNorm);
        Assert.Equal([128L], a.Tensors.Single(t => t.Name == "model.layers.47.self_attn.k_norm.weight").Shape);
        Assert.False(Has(a, "model.layers.0.self_attn.q_proj.bias"));
        Assert.DoesNotContain(a.Tensors, t => t.Name.Contains("shared_expert"));
        Assert.Equal([128L, 2048], a.Tensors.Single(t => t.Name == "model.layers.0.mlp.gate.weight").Shape);
        Assert.Equal([2048L, 768], a.Tensors.Single(t => t.Name == "model.layers.0.mlp.experts.127.down_proj.weight").Shape);
        Assert.Equal(0, a.UnroutedMlpWidth);
        Assert.Contains(Edited(Qwen3Moe, c => c["attention_bias"] = true).Tensors, t => t.Name == "model.layers.0.self_attn.o_proj.bias");
    }

    [Fact]
    public void Mlp_only_layers_and_decoder_sparse_step_give_dense_layers_of_intermediate_size()
    {
        // (i + 1) % 2 == 0: odd layers sparse; layer 1 is also listed in mlp_only_layers, so dense.
        var a = Edited(Qwen2Moe, c => { c["decoder_sparse_step"] = 2; c["mlp_only_layers"] = new JsonArray(1); });
        Assert.Equal([5632L, 2048], a.Tensors.Single(t => t.Name == "model.layers.0.mlp.gate_proj.weight").Shape);
        Assert.True(Has(a, "model.layers.1.mlp.down_proj.weight"));
        Assert.False(Has(a, "model.layers.1.mlp.gate.weight"));
        Assert.True(Has(a, "model.layers.3.mlp.experts.0.up_proj.weight"));
        Assert.False(Has(a, "model.layers.2.mlp.gate.weight"));
        int sparse = Enumerable.Range(0, 24).Count(i => (i + 1) % 2 == 0 && i != 1);
        Assert.Equal(sparse, a.Tensors.Count(t => t.Name.EndsWith(".mlp.gate.weight", StringComparison.Ordinal)));
        Assert.Equal(5632, a.UnroutedMlpWidth);
        long unusedExperts = (long)sparse * (60 - 4) * 3 * 2048 * 1408;
        Assert.Equal(a.ParameterCount - unusedExperts, a.ActiveParameterCount);
    }

    [Fact]
    public void Zero_experts_or_every_layer_dense_is_a_dense_model()
    {
        var none = Edited(Qwen2Moe, c => c["num_experts"] = 0);
        Assert.False(none.IsMoE);
        Assert.Equal(none.ParameterCount, none.ActiveParameterCount);
        Assert.DoesNotContain(none.Tensors, t => t.Role == TensorRole.Router);
        var allDense = Edited(Qwen3Moe, c => c["mlp_only_layers"] = new JsonArray(Enumerable.Range(0, 48).Select(i => (JsonNode)i).ToArray()));
        Assert.False(allDense.IsMoE);
        Assert.Equal([6144L, 2048], allDense.Tensors.Single(t => t.Name == "model.layers.47.mlp.up_proj.weight").Shape);
    }

    [Fact]
    public void Absent_moe_keys_take_the_config_class_defaults()
    {
        // Qwen3MoeConfig: 128 experts, 8 per token, moe_intermediate_size 768; Qwen2MoeConfig: 60, 4, 1408, shared 5632, qkv_bias.
        string[] keys = ["num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "decoder_sparse_step", "mlp_only_layers"];
        var q3 = Edited(Qwen3Moe, c => { foreach (var k in keys) c.Remove(k); c["moe_intermediate_size"] = 512; c["num_experts"] = 16; });
        Assert.Equal((16, 8, 512), (q3.NumExperts, q3.ExpertsPerToken, q3.ExpertWidth));
        var q3d = Edited(Qwen3Moe, c => { foreach (var k in keys) c.Remove(k); });
        Assert.Equal((128, 8, 768), (q3d.NumExperts, q3d.ExpertsPerToken, q3d.ExpertWidth));
        var q2 = Edited(Qwen2Moe, c => { foreach (var k in keys) c.Remove(k); c["num_experts"] = 8; c["num_experts_per_tok"] = 2; });
        Assert.Equal((8, 2, 1408), (q2.NumExperts, q2.ExpertsPerToken, q2.ExpertWidth));
        Assert.Equal([5632L, 2048], q2.Tensors.Single(t => t.Name == "model.layers.0.mlp.shared_expert.up_proj.weight").Shape);
        Assert.DoesNotContain(Edited(Qwen2Moe, c => c["qkv_bias"] = false).Tensors, t => t.Name.EndsWith("q_proj.bias", StringComparison.Ordinal));
    }

    [Fact]
    public void Transformers_5_spelling_num_local_experts_is_read_for_qwen3_moe()
    {
        var a = Edited(Qwen3Moe, c => { c.Remove("num_experts"); c["num_local_experts"] = 64; });
        Assert.Equal(64, a.NumExperts);
    }
    /// <summary>
    /// A long prefill under transformers 5's grouped_mm holds every routed pair at once (grouped_mm_experts_forward's locals,
    /// integrations/moe.py): Qwen3-30B-A3B at 32,768 tokens routes 262,144 pairs through one layer, each holding the
    /// gathered row and its sorted copy, gate_up and the gated product, the fp32 weighted output and its unsorted copy,
    /// four int64 indices, histc's int32 copy and the fp32 weight, and the summed output and its cast at the end. The eager
    /// loop holds one expert's rows at a time.
    /// </summary>
    [Fact]
    public void A_grouped_mm_prefill_holds_every_routed_pair()
    {
        var a = ModelCatalog.Get(Qwen3Moe);
        double Prefill(ExpertsBackend b) => Planner.Fit.Planner.Create(a, new Job { Task = JobTask.Infer, Seq = 32768, Experts = b }, [])
            .Ledger.Line(LineKind.PrefillActivations).Bytes;
        double T = 32768, h = 2048, I = 768, pairs = T * 8;
        double perPair = 2 * 2 * h + 3 * 2 * I + 2 * 4 * h + 4 * 8 + 4 + 4;
        double grouped = pairs * perPair + T * h * (4 + 2);
        // The layer's other live tensors (the residual stream, norm output) come on top, as for any MLP.
        Assert.Equal(grouped + 2 * 2 * h * T + 2 * h * T, Prefill(ExpertsBackend.GroupedMm), tolerance: 1);
        Assert.True(Prefill(ExpertsBackend.Eager) < grouped / 5);
    }
}
