using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

public class FitTests
{
    [Fact]
    public void Memory_never_shrinks_as_batch_or_sequence_grow()
    {
        var arch = Llama31_8B;
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, new Job()));
        foreach (var job in new[] { new Job(), new Job { Attention = AttentionKernel.Eager, Checkpointing = Checkpointing.Full }, new Job { Task = JobTask.Infer } })
        {
            // The tensors never shrink; the allocator's fragmentation may wiggle (a longer sequence can happen to reuse
            // cached blocks better), but the total never falls below the tensors plus the runtime.
            long previous = 0;
            for (int b = 1; b <= 64; b *= 2) previous = Check(job with { Batch = b }, previous);
            previous = 0;
            for (int s = 16; s <= 65536; s *= 2) previous = Check(FitSearch.With(job, batch: false, s), previous);
        }

        long Check(Job j, long previousPeak)
        {
            var l = LedgerBuilder.Build(profile, j, DeviceKind.Gpu, explain: false);
            Assert.True(l.PeakBytes >= previousPeak);
            Assert.True(l.TotalBytes >= l.PeakBytes + l.OutsideAllocatorBytes, $"{j.Batch}×{j.Seq}: total below tensors + runtime");
            Assert.True(l.ReservedBytes >= l.PeakBytes);
            return l.PeakBytes;
        }
    }

    [Theory]
    [InlineData("batch")]
    [InlineData("seq")]
    public void Search_finds_the_boundary(string parameter)
    {
        var arch = Llama31_8B;
        var device = GpuCatalog.Get("a100-80gb");
        var p = Planner.Fit.Planner.Create(arch, new Job(), [device], parameter);
        int v = p.Search!.Value;
        Assert.True(v > 1);
        var profile = ModelProfile.Create(p.Selection);
        // The boundary by the verdict's own rule (total, or the capacity-limited replay when the total exceeds it).
        Assert.True(FitCheck.Fits(profile, FitSearch.With(new Job(), parameter == "batch", v), device, DeviceKind.Gpu));
        if (parameter == "batch" || v < arch.MaxPositionEmbeddings)
            Assert.False(FitCheck.Fits(profile, FitSearch.With(new Job(), parameter == "batch", v + 1), device, DeviceKind.Gpu));
    }

    [Fact]
    public void More_memory_never_lowers_the_search_result_and_none_fitting_gives_zero()
    {
        var arch = Llama31_8B;
        int previous = 0;
        foreach (var gib in new[] { 10, 16, 24, 40, 80, 141 })
        {
            var p = Planner.Fit.Planner.Create(arch, new Job(), [Device.Custom((long)(gib * ByteSize.GiB))], "batch");
            Assert.True(p.Search!.Value >= previous);
            previous = p.Search.Value;
        }
        Assert.Equal(0, Planner.Fit.Planner.Create(arch, new Job(), [GpuCatalog.Get("t4")], "batch").Search!.Value);
    }

    [Fact]
    public void Verdicts_carry_headroom_and_fixes_come_with_their_new_peak()
    {
        var arch = Llama31_8B;
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.AmpBf16, Batch = 4, Seq = 2048 };
        var p = Plan(arch, job, GpuCatalog.Get("a100-80gb"), GpuCatalog.Get("h200"));
        Assert.False(p.Verdicts[0].Fits);
        Assert.Equal(p.Verdicts[0].Device.CapacityBytes - p.Ledger.TotalBytes, p.Verdicts[0].HeadroomBytes);
        Assert.NotEmpty(p.Fixes);
        var first = p.Fixes[0];
        Assert.True(first.Fits);
        Assert.True(first.TotalBytes < p.Ledger.TotalBytes);
        Assert.All(p.Fixes.Where(f => f.Fits), f => Assert.True(f.TotalBytes <= p.Verdicts[0].Device.CapacityBytes));
        Assert.Contains(p.Fixes, f => f.Change.Settings.Contains(new Setting(JobParameters.Checkpointing, "full")));
        Assert.Contains(p.Fixes, f => f.Change.Settings.Contains(new Setting(JobParameters.Method, "lora")));
    }

    [Fact]
    public void When_no_single_change_fits_the_fixes_combine_and_end_with_the_longest_sequence_that_fits()
    {
        var arch = Catalog.ModelCatalog.Get("meta-llama/Llama-3.1-70B");
        var job = new Job { Method = TrainingMethod.QLora, WeightsDtype = DType.Nf4, Seq = 8192 };
        var p = Plan(arch, job, GpuMemory.Parse("48GB"));
        Assert.False(p.Verdicts[0].Fits);
        Assert.DoesNotContain(p.Fixes, f => f.Fits && !f.Change.Settings.Any(s => s.Parameter == JobParameters.Seq));
        // The first fitting fix is the combination: checkpointing and double quantization, then the sequence they allow.
        var best = p.Fixes[0];
        Assert.True(best.Fits);
        Assert.Contains(new Setting(JobParameters.Checkpointing, "full"), best.Change.Settings);
        Assert.Contains(new Setting(JobParameters.WeightsDtype, "nf4-dq"), best.Change.Settings);
        Assert.Contains(best.Change.Settings, s => s.Parameter == JobParameters.Seq);
        Assert.True(best.Job.Seq > 1024 && best.Job.Seq < 8192, $"seq {best.Job.Seq}");
        // The sequence cut alone is offered too, after the combination (it changes the data the most).
        var alone = p.Fixes.Single(f => f.Change.Settings[0].Parameter == JobParameters.Seq);
        Assert.True(alone.Job.Seq < best.Job.Seq);
        // No parameter twice in one combination.
        Assert.All(p.Fixes, f => Assert.Equal(f.Change.Settings.Select(s => s.Parameter).Distinct().Count(), f.Change.Settings.Count));
    }

    [Fact]
    public void Full_finetuning_is_offered_the_optimizer_step_in_backward_where_it_saves_the_gradients()
    {
        // Llama-3.1-8B in pure bf16 at 16k tokens on an H100: checkpointing alone leaves every gradient and the foreach
        // temporaries at the step (about 75 GiB of weights, gradients, states and temporaries); stepping each parameter
        // in backward as well fits.
        var h100 = GpuCatalog.Get("h100");
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, Batch = 1, Seq = 16384 };
        var p = Plan(Llama31_8B, job, h100);
        Assert.False(p.Verdicts[0].Fits);
        var inBackward = new Setting(JobParameters.OptimizerInBackward);
        Assert.Contains(p.Fixes, f => f.Change.Settings.SequenceEqual([inBackward]));
        var combined = p.Fixes.First(f => f.Fits);
        Assert.Contains(inBackward, combined.Change.Settings);
        Assert.True(combined.Job.OptimizerInBackward);
        var checkpointingAlone = p.Fixes.Single(f => f.Change.Settings.SequenceEqual([new Setting(JobParameters.Checkpointing, "full")]));
        Assert.True(combined.TotalBytes < checkpointingAlone.TotalBytes);
        // Not offered where it cannot apply or saves little: with accumulation, for adapters.
        foreach (var other in new[] { job with { GradAccumulation = 4 }, job with { Method = TrainingMethod.Lora, Batch = 8 } })
        {
            var fixes = Plan(Llama31_8B, other, h100).Fixes;
            Assert.NotEmpty(fixes);
            Assert.DoesNotContain(fixes, f => f.Change.Settings.Contains(inBackward));
        }
    }

    [Fact]
    public void Qlora_defaults_to_double_quantized_nf4_as_current_recipes_do() =>
        Assert.Equal(DType.Nf4Dq, new Job { Method = TrainingMethod.QLora }.ResolvedWeightsDtype);

    [Fact]
    public void Micro_batch_fix_keeps_the_effective_batch()
    {
        var arch = Llama31_8B;
        var job = new Job { Method = TrainingMethod.Lora, Batch = 16, Seq = 2048 };
        var p = Plan(arch, job, GpuCatalog.Get("rtx4090"));
        var micro = p.Fixes.First(f => f.Change.Settings[0].Parameter == JobParameters.Batch);
        Assert.Equal(16, micro.Job.Batch * micro.Job.GradAccumulation);
    }

    [Fact]
    public void Default_plan_is_lora_bf16_batch1_seq2048_and_fits_an_A100()
    {
        // 80 GB: with PEFT's default lora_dropout (0.05) every adapted linear keeps its own fp32 dropout copy and mask for
        // all 2048 tokens (≈ 11.9 GiB over 32 layers), which puts this job just over an A100 40GB without checkpointing.
        var p = Plan(Llama31_8B, new Job(), GpuCatalog.Get("a100-80gb"));
        Assert.Equal(TrainingMethod.Lora, p.Job.Method);
        Assert.Equal(Precision.Bf16, p.Job.Precision);
        Assert.True(p.Verdicts[0].Fits);
    }
    [Fact]
    public void Sdpa_is_offered_only_where_transformers_has_it()
    {
        // gpt_oss's attention sinks have no SDPA path (_supports_sdpa = False): transformers runs eager whatever is asked,
        // so "--attention sdpa" would change nothing on the GPU. A Llama with eager attention is offered SDPA.
        var gptOss = Catalog.ModelCatalog.Get("openai/gpt-oss-20b");
        var tooSmall = Plan(gptOss, new Job { Method = TrainingMethod.Lora }, GpuCatalog.Get("rtx4090"));
        Assert.False(tooSmall.Verdicts[0].Fits);
        Assert.NotEmpty(tooSmall.Fixes);
        Assert.DoesNotContain(tooSmall.Fixes, f => f.Change.Settings.Any(s => s.Parameter == JobParameters.Attention));
        var eagerLlama = Plan(Llama31_8B, new Job { Attention = AttentionKernel.Eager, Seq = 16384 }, GpuCatalog.Get("a100-40gb"));
        Assert.Contains(eagerLlama.Fixes, f => f.Change.Settings.Contains(new Setting(JobParameters.Attention, "sdpa")));
    }
    [Fact]
    public void Inference_without_sdpa_is_offered_the_flash_kernel_for_sinks()
    {
        // gpt-oss-120b (MXFP4) at an 8k prompt: eager attention materialises b·a·s² scores and overflows an H100; the sinks'
        // flash kernel (kernels-community/vllm-flash-attn3) has no score matrix. Training is not offered it (no backward).
        var arch = Catalog.ModelCatalog.Get("openai/gpt-oss-120b");
        var p = Plan(arch, new Job { Task = JobTask.Infer, Seq = 8192, Context = 32768 }, GpuCatalog.Get("h100"));
        Assert.False(p.Verdicts[0].Fits);
        var flash = p.Fixes[0];
        Assert.Equal([new Setting(JobParameters.Attention, "flash")], flash.Change.Settings);
        Assert.True(flash.Fits);
        var training = Plan(Catalog.ModelCatalog.Get("openai/gpt-oss-20b"), new Job { Method = TrainingMethod.Lora }, GpuCatalog.Get("rtx4090"));
        Assert.DoesNotContain(training.Fixes, f => f.Change.Settings.Any(s => s.Parameter == JobParameters.Attention));
    }

    [Fact]
    public void A_change_that_does_not_lower_the_total_is_no_fix()
    {
        // DeepSeek-V3's FP8 checkpoint re-quantized to NF4: bitsandbytes replaces nn.Linear only, so the fused expert stacks
        // are dequantized to 16-bit and the total grows. Neither that change nor a combination holding it is offered.
        var arch = Catalog.ModelCatalog.Get("deepseek-ai/DeepSeek-V3");
        var job = new Job { Task = JobTask.Infer, Seq = 8192, Context = 32768 };
        var p = Plan(arch, job, GpuCatalog.Get("h100"));
        var nf4 = LedgerBuilder.Build(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job)), p.Job with { WeightsDtype = DType.Nf4 }, DeviceKind.Gpu, explain: false);
        Assert.True(nf4.TotalBytes > p.Ledger.TotalBytes, "the premise: NF4 raises this checkpoint's total");
        // int8 weights lower nothing either (FP8 is already one byte), and an fp8 KV cache is no fix (transformers has
        // none): the list may be empty, and whatever it holds lowers the total.
        Assert.All(p.Fixes, f => Assert.True(f.Fits || f.TotalBytes < p.Ledger.TotalBytes, f.Change.ToString()));
        Assert.DoesNotContain(p.Fixes, f => f.Change.Settings.Contains(new Setting(JobParameters.WeightsDtype, "nf4")));
    }

    [Fact]
    public void A_kv_cache_transformers_cannot_hold_is_labelled_and_never_offered_as_a_fix()
    {
        // 8 prompts of 4,096 tokens growing to 32,768 overflow an L4: the fixes are weight formats; transformers keeps its
        // KV cache in the compute dtype (no fp8 cache), so --kv-dtype fp8 is not among them.
        var job = new Job { Task = JobTask.Infer, Seq = 4096, Context = 32768, Batch = 8 };
        var l4 = GpuCatalog.Get("l4");
        var p = Plan(Llama31_8B, job, l4);
        Assert.False(p.Verdicts[0].Fits);
        Assert.NotEmpty(p.Fixes);
        Assert.DoesNotContain(p.Fixes, f => f.Change.Settings.Any(s => s.Parameter == JobParameters.KvDtype));
        Assert.Null(p.KvDtypeNote);

        // Asked for, an fp8 cache is planned at one byte per element and the plan says what that cache is.
        var fp8 = Plan(Llama31_8B, job with { KvDtype = DType.Fp8 }, l4);
        Assert.Equal(p.Ledger.Line(LineKind.KvCacheFullContext).Bytes / 2, fp8.Ledger.Line(LineKind.KvCacheFullContext).Bytes);
        string note = fp8.KvDtypeNote!.Render(x => "--" + x.Name.Replace('_', '-'));
        Assert.Contains("--kv-dtype fp8", note);
        Assert.Contains("compute dtype (bf16)", note);
        Assert.Contains("QuantizedCache", note);
        var json = System.Text.Json.Nodes.JsonNode.Parse(PlanJson.Serialize(fp8))!;
        Assert.Contains("serving engine", (string?)json["kv_dtype_note"]);
        // The compute dtype named explicitly, training, and the CPU get no note.
        Assert.Null(Plan(Llama31_8B, job with { KvDtype = DType.Bf16 }, l4).KvDtypeNote);
        Assert.Null(KvDtypeNote.For(job with { KvDtype = DType.Fp8 }, DeviceKind.Cpu));
    }

    [Fact]
    public void Inference_that_fits_no_gpu_gets_the_fewest_gpus_its_weights_and_cache_need()
    {
        // DeepSeek-V3's FP8 checkpoint at 8,192 tokens on an H100: every split holds all weights and every layer's cache.
        var arch = Catalog.ModelCatalog.Get("deepseek-ai/DeepSeek-V3");
        var h100 = GpuCatalog.Get("h100");
        var p = Plan(arch, new Job { Task = JobTask.Infer, Seq = 8192 }, h100);
        var floor = p.InferenceGpuFloor!;
        double weights = p.Ledger.Tensors.Where(e => e.Category == Category.Weights).Sum(e => e.Bytes);
        double cache = p.Ledger.Line(LineKind.KvCacheFullContext).Bytes;
        long usable = h100.CapacityBytes - p.Ledger.OutsideAllocatorBytes;
        Assert.Equal((long)Math.Ceiling(weights + cache), floor.WeightsAndCacheBytes);
        Assert.Equal(usable, floor.UsablePerGpuBytes);
        Assert.Equal((int)Math.Ceiling((weights + cache) / usable), floor.Gpus);
        Assert.InRange(floor.Gpus, 8, 10);   // ~636 GiB over ~78 GiB
        var json = System.Text.Json.Nodes.JsonNode.Parse(PlanJson.Serialize(p))!;
        Assert.Equal(floor.Gpus, (int)json["inference_gpus_lower_bound"]!["gpus"]!);

        // On a V100 gpt-oss-20b's MXFP4 experts load as bf16: the bound counts that load (~39 GiB over three 16 GB cards).
        var v100 = Plan(Catalog.ModelCatalog.Get("openai/gpt-oss-20b"), new Job { Task = JobTask.Infer, Seq = 1024 }, GpuCatalog.Get("v100-16gb"));
        Assert.True(v100.InferenceGpuFloor!.WeightsAndCacheBytes > 2 * v100.Ledger.Tensors.Where(e => e.Category == Category.Weights).Sum(e => e.Bytes));
        Assert.Equal(3, v100.InferenceGpuFloor.Gpus);
        // A job that fits, training (planned over GPUs by its own layouts) and a bound of one GPU get none.
        Assert.Null(Plan(Llama31_8B, new Job { Task = JobTask.Infer }, h100).InferenceGpuFloor);
        Assert.Null(Plan(arch, new Job(), h100).InferenceGpuFloor);
        Assert.Null(Plan(Catalog.ModelCatalog.Get("openai/gpt-oss-20b"), new Job { Task = JobTask.Infer, Seq = 1024 }, GpuCatalog.Get("t4")).InferenceGpuFloor);
    }
}
