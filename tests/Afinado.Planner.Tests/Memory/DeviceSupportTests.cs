using System.Text.Json.Nodes;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// What a GPU's compute capability does to a job. transformers dequantizes MXFP4 weights to bf16 below 7.5
/// (quantizer_mxfp4.py) and FP8 weights below 8.9 (quantizer_finegrained_fp8.py) when the model loads, so the verdict on
/// such a GPU judges the 16-bit load (the plan with --weights-dtype bf16); flash_attention_2 needs 8.0 and the sinks'
/// FlashAttention-3 kernel 9.0, so a job asking for them cannot run below, whatever the memory.
/// </summary>
public class DeviceSupportTests
{
    private static readonly Job GptOssInfer = new() { Task = JobTask.Infer, Seq = 1024 };

    private static Plan Plan(string model, Job job, params string[] gpus) =>
        Planner.Fit.Planner.Create(ModelCatalog.Get(model), job, [.. gpus.Select(GpuCatalog.Get)]);

    [Fact]
    public void Gpt_oss_on_a_volta_card_is_judged_as_the_bf16_load_it_becomes()
    {
        var plan = Plan("openai/gpt-oss-20b", GptOssInfer, "v100-32gb", "t4", "h100");
        var bf16 = Plan("openai/gpt-oss-20b", GptOssInfer with { WeightsDtype = DType.Bf16 }, "v100-32gb");
        var (v100, t4, h100) = (plan.Verdicts[0], plan.Verdicts[1], plan.Verdicts[2]);

        Assert.Equal(DType.Mxfp4, plan.Job.ResolvedWeightsDtype);
        Assert.Equal(DType.Mxfp4, v100.Dequantized!.From);
        Assert.Equal(new ComputeCapability(7, 5), v100.Dequantized.Needs);
        Assert.Equal(bf16.Ledger.TotalBytes, v100.TotalOnDeviceBytes);
        Assert.Equal(v100.Device.CapacityBytes - bf16.Ledger.TotalBytes, v100.HeadroomBytes);
        // 16 GiB as MXFP4 fits a 32 GB card; the ~40 GiB bf16 load does not.
        Assert.True(plan.Ledger.TotalBytes < v100.Device.CapacityBytes);
        Assert.False(v100.Fits);
        // Turing (7.5) and Hopper run the MXFP4 kernels: judged on the plan itself.
        foreach (var v in new[] { t4, h100 })
        {
            Assert.Null(v.Dequantized);
            Assert.Equal(v.Device.CapacityBytes - plan.Ledger.TotalBytes, v.HeadroomBytes);
        }
    }

    [Fact]
    public void Deepseeks_fp8_checkpoint_is_dequantized_below_ada()
    {
        var job = new Job { Task = JobTask.Infer, Seq = 512 };
        var plan = Plan("deepseek-ai/DeepSeek-V3", job, "a100-80gb", "rtx3090", "rtx4090", "h100");
        Assert.Equal(DType.Fp8, plan.Job.ResolvedWeightsDtype);
        long bf16 = Plan("deepseek-ai/DeepSeek-V3", job with { WeightsDtype = DType.Bf16 }, "h100").Ledger.TotalBytes;
        Assert.All(plan.Verdicts.Take(2), v => Assert.Equal(bf16, v.TotalOnDeviceBytes));
        Assert.All(plan.Verdicts.Skip(2), v => Assert.Null(v.Dequantized));
        Assert.True(bf16 > plan.Ledger.TotalBytes * 3 / 2);
    }

    [Fact]
    public void Formats_every_gpu_computes_and_gpus_of_unknown_capability_are_left_as_planned()
    {
        var llama = Plan("meta-llama/Llama-3.1-8B", new Job { Task = JobTask.Infer, Seq = 512 }, "v100-16gb");
        Assert.Null(llama.Verdicts[0].Dequantized);
        var custom = Planner.Fit.Planner.Create(ModelCatalog.Get("openai/gpt-oss-20b"), GptOssInfer, [Device.Custom(32L << 30)]);
        Assert.Null(custom.Verdicts[0].Dequantized);
        Assert.Null(DeviceSupport.For(GptOssInfer with { WeightsDtype = DType.Mxfp4 }, GpuCatalog.Get("mi300x")));
    }

    [Fact]
    public void Searches_and_fixes_for_the_first_gpu_use_the_load_it_holds()
    {
        var v100 = GpuCatalog.Get("v100-32gb");
        var plan = Planner.Fit.Planner.Create(ModelCatalog.Get("openai/gpt-oss-20b"), GptOssInfer, [v100], maxParameter: "seq");
        var arch = ModelCatalog.Get("openai/gpt-oss-20b");
        var bf16 = Planner.Fit.Planner.ForAttention(arch, Planner.Fit.Planner.ForCheckpoint(arch, GptOssInfer) with { WeightsDtype = DType.Bf16 });
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, bf16));
        Assert.Equal(FitSearch.Largest(profile, bf16, v100, DeviceKind.Gpu, "seq"), plan.Search!.Value);
        Assert.Equal(0, plan.Search.Value);
        // Every fix is priced as the bf16 load, none below what that load already holds; flash (Hopper only for sinks) is not offered.
        Assert.NotEmpty(plan.Fixes);
        Assert.All(plan.Fixes, f => Assert.NotEqual(DType.Mxfp4, f.Job.ResolvedWeightsDtype));
        Assert.DoesNotContain(plan.Fixes, f => f.Job.Attention == AttentionKernel.Flash);
    }

    [Fact]
    public void Flash_attention_cannot_run_below_its_compute_capability()
    {
        var job = new Job { Attention = AttentionKernel.Flash, Seq = 512, Batch = 1 };
        var plan = Plan("meta-llama/Llama-3.2-1B", job, "t4", "l4");
        Assert.False(plan.Verdicts[0].Fits);
        Assert.Contains("8.0", plan.Verdicts[0].Unsupported!.ToString());
        Assert.Contains("attention sdpa", plan.Verdicts[0].Unsupported!.ToString());
        Assert.True(plan.Verdicts[0].HeadroomBytes > 0); // the memory would fit: the kernel is what is missing
        Assert.Null(plan.Verdicts[1].Unsupported);
        Assert.True(plan.Verdicts[1].Fits);
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(ModelCatalog.Get("meta-llama/Llama-3.2-1B"), job));
        Assert.False(FitCheck.Fits(profile, job, GpuCatalog.Get("t4"), DeviceKind.Gpu));
        Assert.Equal(0, FitSearch.Largest(profile, job, GpuCatalog.Get("t4"), DeviceKind.Gpu, "batch"));

        // gpt_oss's sinks run flash only through FlashAttention-3: Hopper.
        var sinks = Plan("openai/gpt-oss-20b", GptOssInfer with { Attention = AttentionKernel.Flash }, "a100-80gb", "h100");
        Assert.Contains("9.0", sinks.Verdicts[0].Unsupported!.ToString());
        Assert.Null(sinks.Verdicts[1].Unsupported);
    }

    [Fact]
    public void FlashAttention_3_is_Hopper_only_while_flash_attention_2_runs_on_Blackwell_cards()
    {
        // FlashAttention-3 requires "H100 / H800 GPU": a Blackwell card (12.0) is above 9.0 and still cannot run it.
        var sinks = Plan("openai/gpt-oss-20b", GptOssInfer with { Attention = AttentionKernel.Flash }, "rtx5090", "rtx-pro-6000", "h200");
        Assert.Contains("12.0", sinks.Verdicts[0].Unsupported!.ToString());
        Assert.Contains("attention eager", sinks.Verdicts[0].Unsupported!.ToString());
        Assert.NotNull(sinks.Verdicts[1].Unsupported);
        Assert.Null(sinks.Verdicts[2].Unsupported);
        var llama = Plan("meta-llama/Llama-3.2-1B", new Job { Attention = AttentionKernel.Flash, Seq = 512 }, "rtx5090");
        Assert.Null(llama.Verdicts[0].Unsupported);
        Assert.True(llama.Verdicts[0].Fits);
    }

    [Fact]
    public void Json_names_the_capability_the_dequantized_load_and_what_cannot_run()
    {
        var plan = Plan("openai/gpt-oss-20b", GptOssInfer, "v100-32gb", "h100");
        var gpus = JsonNode.Parse(PlanJson.Serialize(plan))!["gpus"]!.AsArray();
        Assert.Equal("7.0", (string?)gpus[0]!["compute_capability"]);
        Assert.Equal("bf16", (string?)gpus[0]!["dequantized"]!["to"]);
        Assert.Equal(plan.Verdicts[0].TotalOnDeviceBytes, (long?)gpus[0]!["dequantized"]!["total_bytes"]);
        Assert.Null(gpus[1]!["dequantized"]);

        var flash = Plan("meta-llama/Llama-3.2-1B", new Job { Attention = AttentionKernel.Flash, Seq = 512 }, "t4");
        var t4 = JsonNode.Parse(PlanJson.Serialize(flash, p => "--" + p.Name))!["gpus"]![0]!;
        Assert.False((bool)t4["fits"]!);
        Assert.Contains("--attention sdpa", (string?)t4["unsupported"]);
    }

    [Fact]
    public void A_layout_of_gpus_that_lack_the_kernel_cannot_run_and_is_not_searched()
    {
        var job = new Job { Attention = AttentionKernel.Flash, Checkpointing = Checkpointing.Full };
        var plan = Planner.Fit.Planner.Create(ModelCatalog.Get("meta-llama/Llama-3.1-8B"), job, [], suggestFixes: false);
        var request = new LayoutRequest(new ParallelLayout { Gpus = 4, Sharding = Sharding.FsdpFull }, true, true, null);
        var multi = MultiGpuPlanner.Create(plan, request, [GpuCatalog.Get("v100-32gb"), GpuCatalog.Get("a100-80gb")], EngineFamily.Fsdp);
        var (v100, a100) = (multi.Verdicts[0], multi.Verdicts[1]);
        Assert.True(v100.FitsGpuMemory);
        Assert.False(v100.Fits);
        Assert.Contains("compute capability 8.0", v100.Unsupported!.ToString());
        Assert.True(a100.Fits);
        Assert.Null(a100.Unsupported);
        var json = JsonNode.Parse(PlanJson.Serialize(multi, p => "--" + p.Name))!["gpus"]!.AsArray();
        Assert.Contains("--attention sdpa", (string?)json[0]!["unsupported"]);

        var fewest = MultiGpuPlanner.Create(plan, request with { SearchFewestGpus = true }, [GpuCatalog.Get("v100-32gb")], EngineFamily.Fsdp);
        Assert.Null(fewest.Fewest);
        Assert.False(fewest.FitsAny);
    }

    [Fact]
    public void A_layout_of_gpus_that_dequantize_is_planned_as_the_16_bit_load()
    {
        // LoRA over DeepSeek-V3's FP8 weights under ZeRO-3 on 8 GPUs: A100s (8.0) load them as bf16, H100s compute FP8.
        var arch = ModelCatalog.Get("deepseek-ai/DeepSeek-V3");
        var job = new Job { Seq = 512, Checkpointing = Checkpointing.Full, WeightsDtype = DType.Fp8 };
        var plan = Planner.Fit.Planner.Create(arch, job, [], suggestFixes: false);
        var bf16 = Planner.Fit.Planner.Create(arch, job with { WeightsDtype = DType.Bf16 }, [], suggestFixes: false);
        Assert.Equal(DType.Fp8, plan.Job.ResolvedWeightsDtype);
        var request = new LayoutRequest(new ParallelLayout { Gpus = 8, Sharding = Sharding.Zero3 }, true, false, null);
        var (a100, h100) = (GpuCatalog.Get("a100-80gb"), GpuCatalog.Get("h100"));
        var multi = MultiGpuPlanner.Create(plan, request, [a100, h100], EngineFamily.DeepSpeed);
        var (onA100, onH100) = (multi.Verdicts[0], multi.Verdicts[1]);
        long asBf16 = MultiGpuPlanner.Create(bf16, request, [h100], EngineFamily.DeepSpeed).Verdicts[0].Ledger.GpuPeakBytes;

        Assert.Equal(DType.Fp8, onA100.Dequantized!.From);
        Assert.Equal(asBf16, onA100.Ledger.GpuPeakBytes);
        Assert.Null(onH100.Dequantized);
        // FP8 applies to the nn.Linear modules (the routed experts are stacked parameters, 16-bit either way): their bf16
        // load, sharded eight ways, is what the A100s hold beyond the H100s.
        Assert.True(onA100.Ledger.GpuPeakBytes > onH100.Ledger.GpuPeakBytes, $"A100 {onA100.Ledger.GpuPeakBytes}, H100 {onH100.Ledger.GpuPeakBytes}");
        var json = JsonNode.Parse(PlanJson.Serialize(multi, p => "--" + p.Name))!["gpus"]!.AsArray();
        Assert.Equal("fp8", (string?)json[0]!["dequantized"]!["from"]);
        Assert.Equal(asBf16, (long)json[0]!["dequantized"]!["total_bytes"]!);
        Assert.Null(json[1]!["dequantized"]);
    }

    [Fact]
    public void The_fewest_volta_gpus_are_counted_for_the_step_it_runs()
    {
        // LoRA on Llama-3.1-8B (grouped KV heads) in bf16, no checkpointing: below 8.0 SDPA runs the math kernel, and every
        // layer keeps its scores, which the per-GPU ledger and the search count.
        var arch = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        var job = new Job { Seq = 1024 };
        var plan = Planner.Fit.Planner.Create(arch, job, [], suggestFixes: false);
        var asRun = Planner.Fit.Planner.Create(arch, job with { PreAmpereGpu = true }, [], suggestFixes: false);
        var request = new LayoutRequest(new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull }, true, true, null, SearchFewestGpus: true);
        var v100 = GpuCatalog.Get("v100-16gb");
        var onV100 = MultiGpuPlanner.Create(plan, request, [v100], EngineFamily.Fsdp);
        Assert.Contains("math kernel", onV100.Verdicts[0].SdpaMath);
        Assert.Equal(MultiGpuPlanner.Create(asRun, request with { SearchFewestGpus = false }, [v100], EngineFamily.Fsdp).Verdicts[0].Ledger.GpuPeakBytes,
            onV100.Verdicts[0].Ledger.GpuPeakBytes);
        Assert.Equal(MultiGpuPlanner.FewestGpus(asRun, request, v100, EngineFamily.Fsdp)?.Gpus, onV100.Fewest?.Gpus);
        // The same memory without a compute capability (a custom size) is planned with the fused kernel: less per GPU.
        var custom = MultiGpuPlanner.Create(plan, request with { SearchFewestGpus = false }, [Device.Custom(v100.CapacityBytes)], EngineFamily.Fsdp);
        Assert.Null(custom.Verdicts[0].SdpaMath);
        Assert.True(onV100.Verdicts[0].Ledger.GpuPeakBytes > custom.Verdicts[0].Ledger.GpuPeakBytes, $"V100 {onV100.Verdicts[0].Ledger.GpuPeakBytes}, custom {custom.Verdicts[0].Ledger.GpuPeakBytes}");
    }

    [Fact]
    public void Bf16_on_a_card_without_it_gets_advice_and_the_same_bytes()
    {
        // Eager attention: the pre-Ampere SDPA dispatch does not apply, so the advice is the only difference.
        var plan = Plan("meta-llama/Llama-3.2-1B", new Job { Seq = 512, Attention = AttentionKernel.Eager }, "t4", "v100-16gb", "l4");
        Assert.All(plan.Verdicts.Take(2), v => Assert.Contains("precision fp16", v.Advice!.ToString()));
        Assert.Null(plan.Verdicts[2].Advice);
        Assert.All(plan.Verdicts, v => Assert.Equal(v.Device.CapacityBytes - plan.Ledger.TotalBytes, v.HeadroomBytes));
        var amp = Plan("meta-llama/Llama-3.2-1B", new Job { Seq = 512, Precision = Precision.AmpBf16 }, "t4");
        Assert.Contains("amp-fp16", amp.Verdicts[0].Advice!.ToString());
        Assert.Null(Plan("meta-llama/Llama-3.2-1B", new Job { Seq = 512, Precision = Precision.Fp16 }, "t4").Verdicts[0].Advice);
        var t4 = JsonNode.Parse(PlanJson.Serialize(plan, p => "--" + p.Name))!["gpus"]![0]!;
        Assert.Contains("--precision fp16", (string?)t4["advice"]);
    }

    [Fact]
    public void The_cpu_device_plans_a_quantized_checkpoint_in_fp32_and_refuses_quantized_settings()
    {
        var job = new Job { Task = JobTask.Infer, Seq = 128, Precision = Precision.Fp32 };
        var cpu = Device.Cpu(64L << 30);
        var plan = Planner.Fit.Planner.Create(ModelCatalog.Get("openai/gpt-oss-20b"), job, [cpu]);
        // Without a GPU transformers dequantizes MXFP4 on load, and the CPU device computes fp32: every weight at 4 B.
        Assert.Equal(DType.Fp32, plan.Job.ResolvedWeightsDtype);
        Assert.Equal(ModelCatalog.Get("openai/gpt-oss-20b").ParameterCount * 4, (long)plan.Ledger.Bytes(LineKind.Weights));
        Assert.DoesNotContain(plan.Fixes, f => f.Job.WeightsDtype is not null || f.Job.KvDtype is not null);

        var mxfp4 = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(ModelCatalog.Get("openai/gpt-oss-20b"), job with { WeightsDtype = DType.Mxfp4 }, [cpu]));
        Assert.Equal(JobParameters.WeightsDtype, mxfp4.Parameter);
        var nf4 = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(ModelCatalog.Get("meta-llama/Llama-3.2-1B"), job with { WeightsDtype = DType.Nf4 }, [cpu]));
        Assert.Equal(JobParameters.WeightsDtype, nf4.Parameter);
        var kv = Assert.Throws<InputError>(() => Planner.Fit.Planner.Create(ModelCatalog.Get("meta-llama/Llama-3.2-1B"), job with { KvDtype = DType.Fp8 }, [cpu]));
        Assert.Equal(JobParameters.KvDtype, kv.Parameter);
    }

    [Fact]
    public void Below_ampere_sdpa_runs_its_math_kernel_for_grouped_heads_or_bf16_and_the_verdict_counts_its_scores()
    {
        // Llama-3.2-1B has 8 KV heads for 32: no fused SDPA kernel below 8.0, whatever the 16-bit type.
        var job = new Job { Seq = 1024, Checkpointing = Checkpointing.None };
        var arch = ModelCatalog.Get("meta-llama/Llama-3.2-1B");
        var plan = Plan("meta-llama/Llama-3.2-1B", job, "t4", "l4");
        var (t4, l4) = (plan.Verdicts[0], plan.Verdicts[1]);
        Assert.Contains("grouped KV heads (8 for 32)", t4.SdpaMath);
        Assert.Null(l4.SdpaMath);
        Assert.Null(l4.TotalOnDeviceBytes);
        var math = PlanHelpers.Ledger(arch, job with { PreAmpereGpu = true });
        Assert.Equal(math.TotalBytes, t4.TotalOnDeviceBytes);
        // The math kernel keeps each layer's b·heads·s² bf16 probabilities for backward.
        long scores = (long)arch.NumLayers * arch.NumHeads * 1024L * 1024 * 2;
        Assert.True(t4.TotalOnDeviceBytes - plan.Ledger.TotalBytes >= scores, $"{t4.TotalOnDeviceBytes - plan.Ledger.TotalBytes} < {scores}");
        Assert.Equal(t4.Device.CapacityBytes - math.TotalBytes, t4.HeadroomBytes);
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job));
        Assert.True(FitSearch.Largest(profile, job, GpuCatalog.Get("t4"), DeviceKind.Gpu, "seq")
            < FitSearch.Largest(profile, job, Device.Custom(GpuCatalog.Get("t4").CapacityBytes), DeviceKind.Gpu, "seq"));

        // Equal head counts: fp16 takes the memory-efficient kernel on a T4, bf16 does not.
        var mha = ModelCatalog.Get("meta-llama/Llama-2-7b-hf");
        Assert.Null(DeviceSupport.SdpaMath(mha, job with { Precision = Precision.Fp16 }, GpuCatalog.Get("t4")));
        Assert.Contains("bf16 inputs", DeviceSupport.SdpaMath(mha, job, GpuCatalog.Get("v100-32gb")));
        // Already the math kernel everywhere (fp32 with grouped heads) and other kernels: nothing changes.
        Assert.Null(DeviceSupport.SdpaMath(arch, job with { Precision = Precision.Fp32 }, GpuCatalog.Get("t4")));
        Assert.Null(DeviceSupport.SdpaMath(arch, job with { Attention = AttentionKernel.Eager }, GpuCatalog.Get("t4")));
        var json = JsonNode.Parse(PlanJson.Serialize(plan))!["gpus"]!.AsArray();
        Assert.Equal(t4.TotalOnDeviceBytes, (long?)json[0]!["total_on_device_bytes"]);
        Assert.Contains("math kernel", (string?)json[0]!["sdpa_math_kernel"]);
        Assert.Null(json[1]!["sdpa_math_kernel"]);
    }

    [Fact]
    public void A_long_prompt_on_a_t4_prefills_with_sdpas_math_kernel()
    {
        // Llama-3.2-1B in fp16 (the T4's native type), 8,192 prompt tokens: generate skips the causal mask, so SDPA gets
        // enable_gqa, which no fused kernel below 8.0 takes; each layer materialises 32 × 8,192² fp16 scores and their softmax.
        var arch = ModelCatalog.Get("meta-llama/Llama-3.2-1B");
        var job = new Job { Task = JobTask.Infer, Precision = Precision.Fp16, Seq = 8192 };
        var t4 = GpuCatalog.Get("t4");
        var plan = Plan("meta-llama/Llama-3.2-1B", job, "t4", "l4");
        var (onT4, onL4) = (plan.Verdicts[0], plan.Verdicts[1]);
        Assert.Contains("grouped KV heads (8 for 32)", onT4.SdpaMath);
        Assert.DoesNotContain("backward", onT4.SdpaMath);
        Assert.Null(onL4.SdpaMath);
        var math = PlanHelpers.Ledger(arch, job with { PreAmpereGpu = true });
        Assert.Equal(math.TotalBytes, onT4.TotalOnDeviceBytes);
        // The fp16 weights and one layer's scores with their softmax are alive together; the fused plan holds neither score.
        long weights = arch.ParameterCount * 2, scores = 2L * arch.NumHeads * 8192L * 8192 * 2;
        Assert.True(onT4.TotalOnDeviceBytes >= weights + scores, $"{onT4.TotalOnDeviceBytes} < {weights + scores}");
        Assert.True(plan.Ledger.TotalBytes < weights + scores / 2, $"{plan.Ledger.TotalBytes}");
        // The replayed prefill and the formula agree on the math kernel's transient (within the allocator's rounding).
        var formula = LedgerBuilder.Build(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job)), job with { PreAmpereGpu = true }, DeviceKind.Gpu,
            explain: false, replay: false);
        Assert.InRange((double)math.Replay!.LargestAllocatedBytes / formula.PeakBytes, 0.97, 1.03);
        // Fewer such prompts fit a T4 at once than a card of the same memory with fused kernels.
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job));
        int onT4Batch = FitSearch.Largest(profile, job, t4, DeviceKind.Gpu, "batch");
        int fusedBatch = FitSearch.Largest(profile, job, Device.Custom(t4.CapacityBytes), DeviceKind.Gpu, "batch");
        Assert.True(onT4Batch < fusedBatch, $"T4 {onT4Batch}, fused {fusedBatch}");
        // A static cache passes a mask, so transformers repeats K/V and fp16 takes the memory-efficient kernel.
        Assert.Null(DeviceSupport.SdpaMath(arch, job with { KvCache = KvCacheKind.Static }, t4));
        Assert.Contains("bf16 inputs", DeviceSupport.SdpaMath(arch, job with { KvCache = KvCacheKind.Static, Precision = Precision.Bf16 }, t4));
    }
}
