using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// deepseek_v3 / deepseek_v2: MLA attention, dense first layers, routed and shared experts, as the hub checkpoints name
/// them. DeepSeek-V3: "671B total parameters with 37B activated for each token" (model card); a public dump of the loaded
/// model's named parameters totals 671,026,419,200 (the model card's 685B adds the 14B multi-token-prediction layer,
/// which transformers does not load). DeepSeek-V2-Lite: "15.7B total parameters, 2.4B activated" (model card). The exact
/// figures asserted below were derived by hand from the configs and the shapes transformers gives each module.
/// </summary>
public class DeepseekTests
{
    private static readonly ModelArchitecture V3 = ModelCatalog.Get("deepseek-ai/DeepSeek-V3");

    private static ParameterTensor Tensor(ModelArchitecture a, string name) => Assert.Single(a.Tensors, t => t.Name == name);

    private static ModelArchitecture Edited(Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("deepseek-ai/DeepSeek-V3"))!.AsObject();
        edit(node);
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    [Fact]
    public void V3_lists_mla_dense_and_expert_tensors_with_the_dumped_shapes()
    {
        // Element counts as the public dump lists them for layers 0 and 3.
        Assert.Equal(11_010_048, Tensor(V3, "model.layers.0.self_attn.q_a_proj.weight").Elements);
        Assert.Equal([1536L], Tensor(V3, "model.layers.0.self_attn.q_a_layernorm.weight").Shape);
        Assert.Equal([24576L, 1536], Tensor(V3, "model.layers.0.self_attn.q_b_proj.weight").Shape);
        Assert.Equal([576L, 7168], Tensor(V3, "model.layers.0.self_attn.kv_a_proj_with_mqa.weight").Shape);
        Assert.Equal([32768L, 512], Tensor(V3, "model.layers.0.self_attn.kv_b_proj.weight").Shape);
        Assert.Equal([7168L, 16384], Tensor(V3, "model.layers.60.self_attn.o_proj.weight").Shape);
        Assert.Equal(132_120_576, Tensor(V3, "model.layers.2.mlp.down_proj.weight").Elements);
        Assert.DoesNotContain(V3.Tensors, t => t.Name.StartsWith("model.layers.2.mlp.experts.", StringComparison.Ordinal));
        Assert.Equal(14_680_064, Tensor(V3, "model.layers.3.mlp.experts.255.down_proj.weight").Elements);
        Assert.Equal(1_835_008, Tensor(V3, "model.layers.3.mlp.gate.weight").Elements);
        Assert.Equal([256L], Tensor(V3, "model.layers.3.mlp.gate.e_score_correction_bias").Shape);
        Assert.Equal(14_680_064, Tensor(V3, "model.layers.60.mlp.shared_experts.up_proj.weight").Elements);
        // No multi-token-prediction layer: transformers ignores model.layers.61.* when it loads the checkpoint.
        Assert.DoesNotContain(V3.Tensors, t => t.Name.StartsWith("model.layers.61.", StringComparison.Ordinal));
    }

    [Fact]
    public void V3_counts_671_billion_and_37_billion_active()
    {
        Assert.Equal(671_026_419_200L, V3.ParameterCount);
        Assert.Equal(256, V3.NumExperts);
        Assert.Equal(8, V3.ExpertsPerToken);
        // Like OpenAI's gpt-oss card, DeepSeek's "activated" leaves out the embedding table (a lookup): 36.63B → "37B".
        long embed = Tensor(V3, "model.embed_tokens.weight").Elements;
        Assert.Equal(37, Math.Round((V3.ActiveParameterCount - embed) / 1e9));
        Assert.Equal(37_552_297_472L, V3.ActiveParameterCount);
    }

    [Fact]
    public void V2_lite_without_a_query_rank_counts_15_7_billion_and_2_4_billion_active()
    {
        var lite = ModelCatalog.Get("deepseek-ai/DeepSeek-V2-Lite-Chat");
        Assert.Equal([16L * 192, 2048], Tensor(lite, "model.layers.0.self_attn.q_proj.weight").Shape);
        Assert.DoesNotContain(lite.Tensors, t => t.Name.Contains("q_a_proj", StringComparison.Ordinal) || t.Name.Contains("e_score_correction_bias", StringComparison.Ordinal));
        Assert.Equal([2L * 1408, 2048], Tensor(lite, "model.layers.1.mlp.shared_experts.gate_proj.weight").Shape);
        Assert.Equal(15.7, Math.Round(lite.ParameterCount / 1e9, 1));
        // Activated without the embedding table: 2,451,435,008, which the card truncates to "2.4B".
        long embed = Tensor(lite, "model.embed_tokens.weight").Elements;
        Assert.Equal(2_451_435_008L, lite.ActiveParameterCount - embed);
        Assert.Equal(15_706_484_224L, lite.ParameterCount);
    }

    [Fact]
    public void The_transformers_cache_holds_expanded_keys_and_values_per_head()
    {
        // DeepseekV3Attention caches key_states (128 heads × (128 nope + 64 rope)) and value_states (128 heads × 128),
        // not the 512 + 64 latent an MLA kernel keeps: 61 layers × 128 × 320 × 2 B per token.
        Assert.Equal(61L * 128 * (192 + 128) * 2, V3.KvBytesPerToken(2));
        var l = Ledger(V3, new Job { Task = JobTask.Infer, Seq = 1024, Context = 4096, WeightsDtype = DType.Bf16 });
        Assert.Equal(61.0 * 128 * 320 * 2 * 4096, l.Line(LineKind.KvCacheFullContext).Bytes, tolerance: 0.5);
    }

    [Fact]
    public void Inference_keeps_the_fp8_checkpoint_with_one_fp32_scale_per_128_by_128_block()
    {
        Assert.Equal("fp8", V3.CheckpointQuantMethod);
        Assert.Equal((128, 128), V3.Fp8WeightBlock);
        // kv_a_proj_with_mqa [576, 7168]: ⌈576/128⌉ · ⌈7168/128⌉ = 5 · 56 blocks.
        var tiny = Edited(n => n["num_hidden_layers"] = 1);
        long expected = tiny.Fp8Linears.Sum(t => (t.Shape[0] + 127) / 128 * ((t.Shape[1] + 127) / 128) * 4);
        Assert.Equal(expected, tiny.Fp8ScaleBytes);
        Assert.Contains(tiny.Fp8Linears, t => t.Name.EndsWith("kv_a_proj_with_mqa.weight", StringComparison.Ordinal));
        Assert.DoesNotContain(tiny.Fp8Linears, t => t.Role is TensorRole.LmHead or TensorRole.Router);

        var plan = Planner.Fit.Planner.Create(V3, new Job { Task = JobTask.Infer, Seq = 512 }, []);
        Assert.Equal(DType.Fp8, plan.Job.ResolvedWeightsDtype);
        long fp8 = V3.Fp8Linears.Sum(t => t.Elements);
        long fp32 = 58L * 256;
        double weights = plan.Ledger.Line(LineKind.WeightsFrozenQuantized).Bytes + plan.Ledger.Line(LineKind.WeightsSkippedByQuantizer).Bytes;
        Assert.Equal(fp8 + V3.Fp8ScaleBytes + (V3.ParameterCount - fp8 - fp32) * 2.0 + fp32 * 4.0, weights, tolerance: 0.5);
        // Far from a bf16 copy (1.34 TB): under 0.51 of it.
        Assert.True(weights < 0.51 * 2.0 * V3.ParameterCount);
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        Assert.Contains("num_experts_per_tok", Assert.Throws<InputError>(() => Edited(n => n["num_experts_per_tok"] = 300)).Message);
        Assert.Contains("weight_block_size", Assert.Throws<InputError>(() => Edited(n => n["quantization_config"]!["weight_block_size"] = new JsonArray(128))).Message);
        Assert.Contains("quant_method", Assert.Throws<InputError>(() => Edited(n => n["quantization_config"]!["quant_method"] = "awq")).Message);
        Assert.Contains("kv_lora_rank", Assert.Throws<InputError>(() => Edited(n => n.Remove("kv_lora_rank"))).Message);
        // A bf16 export without quantization_config plans bf16 weights.
        Assert.Null(Edited(n => n.Remove("quantization_config")).CheckpointQuantMethod);
    }
}
