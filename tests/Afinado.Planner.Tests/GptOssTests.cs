using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// gpt_oss as transformers' models/gpt_oss builds it (GptOssAttention with biases and sinks, GptOssTopKRouter with a bias,
/// GptOssExperts stacking every expert in four parameters) and as OpenAI's gpt-oss model card (arXiv 2508.10925, table 1)
/// counts it: 20b — MLP 19.12B, attention 0.64B, embed + unembed 1.16B, total 20.91B, active 3.61B, checkpoint 12.8 GiB;
/// 120b — MLP 114.71B, attention 0.96B, embed + unembed 1.16B, total 116.83B, active 5.13B, checkpoint 60.8 GiB.
/// </summary>
public class GptOssTests
{
    private static readonly ModelArchitecture Oss20 = ModelCatalog.Get("openai/gpt-oss-20b");
    private static readonly ModelArchitecture Oss120 = ModelCatalog.Get("openai/gpt-oss-120b");

    private static ParameterTensor Tensor(ModelArchitecture a, string name) => Assert.Single(a.Tensors, t => t.Name == name);

    private static ModelArchitecture Edited(Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("openai/gpt-oss-20b"))!.AsObject();
        edit(node);
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    private static double Billions(long n) => Math.Round(n / 1e9, 2);

    [Fact]
    public void Twenty_b_lists_transformers_tensors_with_their_shapes()
    {
        Assert.Equal([4096L, 2880], Tensor(Oss20, "model.layers.0.self_attn.q_proj.weight").Shape);
        Assert.Equal([512L], Tensor(Oss20, "model.layers.0.self_attn.k_proj.bias").Shape);
        Assert.Equal([2880L], Tensor(Oss20, "model.layers.23.self_attn.o_proj.bias").Shape);
        Assert.Equal([64L], Tensor(Oss20, "model.layers.5.self_attn.sinks").Shape);
        Assert.Equal([32L, 2880], Tensor(Oss20, "model.layers.0.mlp.router.weight").Shape);
        Assert.Equal([32L], Tensor(Oss20, "model.layers.0.mlp.router.bias").Shape);
        Assert.Equal([32L, 2880, 5760], Tensor(Oss20, "model.layers.0.mlp.experts.gate_up_proj").Shape);
        Assert.Equal([32L, 5760], Tensor(Oss20, "model.layers.0.mlp.experts.gate_up_proj_bias").Shape);
        Assert.Equal([32L, 2880, 2880], Tensor(Oss20, "model.layers.0.mlp.experts.down_proj").Shape);
        Assert.Equal([32L, 2880], Tensor(Oss20, "model.layers.0.mlp.experts.down_proj_bias").Shape);
        Assert.Equal([201088L, 2880], Tensor(Oss20, "lm_head.weight").Shape);
        // Stacked experts are parameters, not nn.Linear modules: not LoRA targets by module name.
        Assert.DoesNotContain(Oss20.Linears, l => l.Module.Contains(".experts", StringComparison.Ordinal));
        // q, k, v, o and the router per layer, and the head.
        Assert.Equal(24 * 5 + 1, Oss20.Linears.Count);
    }

    [Theory]
    [InlineData("openai/gpt-oss-20b", 20_914_757_184L, 19.12, 0.64, 3.61)]
    [InlineData("openai/gpt-oss-120b", 116_829_156_672L, 114.71, 0.96, 5.13)]
    public void Counts_match_the_model_card_component_by_component(string id, long total, double mlp, double attention, double active)
    {
        var a = ModelCatalog.Get(id);
        Assert.Equal(total, a.ParameterCount);
        long embed = Tensor(a, "model.embed_tokens.weight").Elements;
        long unembed = Tensor(a, "lm_head.weight").Elements;
        Assert.Equal(1.16, Billions(embed + unembed));
        Assert.Equal(mlp, Billions(a.Tensors.Where(t => t.Module.Contains(".mlp", StringComparison.Ordinal)).Sum(t => t.Elements)));
        Assert.Equal(attention, Billions(a.Tensors.Where(t => t.Module.Contains(".self_attn", StringComparison.Ordinal)).Sum(t => t.Elements)));
        // The card's active count leaves out the embedding table (a lookup, no compute); ours counts every tensor a token touches.
        Assert.Equal(4, a.ExpertsPerToken);
        Assert.Equal(active, Billions(a.ActiveParameterCount - embed));
    }

    [Fact]
    public void Layers_alternate_sliding_and_full_attention_with_a_128_token_window()
    {
        Assert.Equal(128, Oss20.SlidingWindow);
        Assert.All(Enumerable.Range(0, 24), i => Assert.Equal(i % 2 == 0, Oss20.IsSlidingLayer(i)));
        Assert.Equal(18, Oss120.SlidingLayerCount);
        // Without layer_types, GptOssConfig derives the same alternation.
        var derived = Edited(n => n.Remove("layer_types"));
        Assert.All(Enumerable.Range(0, 24), i => Assert.Equal(i % 2 == 0, derived.IsSlidingLayer(i)));
    }

    [Theory]
    [InlineData("openai/gpt-oss-20b", 13_761_264_768L, 12.8)]
    [InlineData("openai/gpt-oss-120b", 65_248_815_744L, 60.8)]
    public void Inference_keeps_the_checkpoint_mxfp4_experts_and_weighs_what_the_card_says(string id, long bytes, double cardGiB)
    {
        var a = ModelCatalog.Get(id);
        Assert.Equal("mxfp4", a.CheckpointQuantMethod);
        var plan = Planner.Fit.Planner.Create(a, new Job { Task = JobTask.Infer, Seq = 1024 }, [GpuCatalog.Get("h100")]);
        Assert.Equal(DType.Mxfp4, plan.Job.ResolvedWeightsDtype);
        var l = plan.Ledger;
        double weights = l.Line(LineKind.WeightsFrozenQuantized).Bytes + l.Line(LineKind.WeightsSkippedByQuantizer).Bytes;
        // Expert weights at 4.25 bits (4-bit values, one 8-bit scale per 32), everything else bf16.
        Assert.Equal(bytes, weights, tolerance: 0.5);
        Assert.Equal(cardGiB, Math.Round(weights / (1L << 30), 1));
        Assert.DoesNotContain(l.Tensors, e => e.Kind == LineKind.DequantizationBuffer);
    }

    [Fact]
    public void Published_fits_hold_20b_in_16_GB_and_120b_on_one_80_GB_card()
    {
        // OpenAI: "gpt-oss-20b ... can run on edge devices with just 16 GB of memory"; "gpt-oss-120b ... runs efficiently
        // on a single 80 GB GPU".
        var job = new Job { Task = JobTask.Infer, Seq = 1024, Context = 4096 };
        var small = Planner.Fit.Planner.Create(Oss20, job, [GpuMemory.Parse("16GB")]);
        Assert.True(small.Verdicts[0].Fits, $"20b total {small.Ledger.TotalBytes / (double)(1L << 30):F2} GiB");
        var big = Planner.Fit.Planner.Create(Oss120, job, [GpuCatalog.Get("h100")]);
        Assert.True(big.Verdicts[0].Fits, $"120b total {big.Ledger.TotalBytes / (double)(1L << 30):F2} GiB");
        // In bf16 neither claim holds.
        Assert.False(Planner.Fit.Planner.Create(Oss20, job with { WeightsDtype = DType.Bf16 }, [GpuMemory.Parse("16GB")]).Verdicts[0].Fits);
    }

    [Fact]
    public void Training_dequantizes_and_mxfp4_is_refused_where_it_does_not_exist()
    {
        var lora = Planner.Fit.Planner.Create(Oss20, new Job { Method = TrainingMethod.Lora }, []);
        Assert.Equal(DType.Bf16, lora.Job.ResolvedWeightsDtype);
        var train = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(Oss20, new Job { Method = TrainingMethod.Lora, WeightsDtype = DType.Mxfp4 }, []));
        Assert.Contains(JobParameters.WeightsDtype.Name, train.Message);
        var dense = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(Llama31_8B, new Job { Task = JobTask.Infer, WeightsDtype = DType.Mxfp4 }, []));
        Assert.Contains("stacked expert", dense.Message);
        Assert.Throws<InputError>(() => new Job { Task = JobTask.Infer, KvDtype = DType.Mxfp4 }.Validate());
        // An experts backend on a dense model would change nothing: refused, naming the setting.
        var experts = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(Llama31_8B, new Job { Experts = ExpertsBackend.Eager }, []));
        Assert.Equal(JobParameters.Experts, experts.Parameter);
        Assert.Contains("dense", experts.Message);
        Planner.Fit.Planner.Create(Oss20, new Job { Method = TrainingMethod.Lora, Experts = ExpertsBackend.Eager }, []);
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        Assert.Contains("num_experts_per_tok", Assert.Throws<InputError>(() => Edited(n => n["num_experts_per_tok"] = 64)).Message);
        Assert.Contains("experts_per_token", Assert.Throws<InputError>(() => Edited(n => n["experts_per_token"] = 2)).Message);
        Assert.Contains("quant_method", Assert.Throws<InputError>(() => Edited(n => n["quantization_config"] = new JsonObject { ["quant_method"] = "gptq" })).Message);
        Assert.Contains("layer_types", Assert.Throws<InputError>(() => Edited(n => n["layer_types"] = new JsonArray("full_attention"))).Message);
        // A bf16 export (no quantization_config) plans bf16 weights for inference.
        var bf16 = Edited(n => n.Remove("quantization_config"));
        Assert.Null(bf16.CheckpointQuantMethod);
        Assert.Equal(DType.Bf16, Planner.Fit.Planner.Create(bf16, new Job { Task = JobTask.Infer }, []).Job.ResolvedWeightsDtype);
    }
}

public class GptOssAttentionTests
{
    [Fact]
    public void Sdpa_falls_back_to_eager_as_transformers_does_and_flash_training_is_refused_by_name()
    {
        var arch = ModelCatalog.Get("openai/gpt-oss-20b");
        var plan = Planner.Fit.Planner.Create(arch, new Job { Seq = 1024 }, []);
        Assert.Equal(AttentionKernel.Eager, plan.Job.Attention);
        Assert.Contains("_supports_sdpa = False", plan.AttentionFallback);
        // The eager plan is the one transformers runs: its attention scores make it larger than an SDPA plan would be.
        var sdpaLedger = LedgerBuilder.Build(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, new Job { Seq = 1024 })), new Job { Seq = 1024 }, Devices.DeviceKind.Gpu);
        Assert.True(plan.Ledger.PeakBytes > sdpaLedger.PeakBytes);
        var error = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(arch, new Job { Attention = AttentionKernel.Flash }, []));
        Assert.Contains(JobParameters.Attention.Name, error.Message);
        // Inference may use the sinks' flash kernel; a Llama keeps SDPA.
        Assert.Equal(AttentionKernel.Flash, Planner.Fit.Planner.Create(arch, new Job { Task = JobTask.Infer, Attention = AttentionKernel.Flash, Seq = 512 }, []).Job.Attention);
        var llama = Planner.Fit.Planner.Create(ModelCatalog.Get("meta-llama/Llama-3.1-8B"), new Job(), []);
        Assert.Equal(AttentionKernel.Sdpa, llama.Job.Attention);
        Assert.Null(llama.AttentionFallback);
    }
}
