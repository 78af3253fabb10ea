using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

public class LedgerTests
{
    [Theory]
    [InlineData("meta-llama/Llama-2-7b-hf", 524_288)]
    [InlineData("meta-llama/Llama-2-70b-hf", 327_680)]
    [InlineData("meta-llama/Llama-3.1-8B", 131_072)]
    public void Kv_cache_bytes_per_token_in_16_bit(string id, long expected)
    {
        var arch = Catalog.ModelCatalog.Get(id);
        var l = Ledger(arch, new Job { Task = JobTask.Infer, Batch = 1, Seq = 1, KvDtype = DType.Bf16 });
        Assert.Equal(expected, l.Line(LineKind.KvCachePrompt).Bytes);
        Assert.Equal(expected, arch.KvBytesPerToken(2));
    }

    [Fact]
    public void Kv_cache_scales_with_batch_context_and_dtype()
    {
        var l = Ledger(Llama31_8B, new Job { Task = JobTask.Infer, Batch = 4, Seq = 1000, Context = 8192, KvDtype = DType.Fp8 });
        Assert.Equal(131_072 / 2.0 * 4 * 8192, l.Line(LineKind.KvCacheFullContext).Bytes);
    }

    [Fact]
    public void Nf4_block_constants()
    {
        Assert.Equal(4.5, DType.Nf4.Bits());
        Assert.Equal(4 + 8.0 / 64 + 32.0 / (64 * 256), DType.Nf4Dq.Bits());
        Assert.Equal(4.127, DType.Nf4Dq.Bits(), 3);
        // 0.373 bit/param saved ≈ 3 GB at 65B (QLoRA paper)
        Assert.InRange((DType.Nf4.Bits() - DType.Nf4Dq.Bits()) / 8 * 65e9, 2.9e9, 3.1e9);
    }

    [Fact]
    public void Qlora_stores_linears_in_nf4_and_the_rest_in_16_bit()
    {
        var arch = Llama31_8B;
        var l = Ledger(arch, new Job { Method = TrainingMethod.QLora, WeightsDtype = DType.Nf4, Batch = 1, Seq = 128 });
        var nf4 = l.Line(LineKind.WeightsFrozenQuantized);
        long head = 128_256L * 4096;
        long embed = head;
        long linears = arch.ParameterCount - head - embed - arch.Tensors.Where(t => t.Role == Architecture.TensorRole.Norm).Sum(t => t.Elements);
        Assert.Equal(linears * 4.5 / 8, nf4.Bytes, 0);
        Assert.Contains(l.Tensors, e => e.Kind == LineKind.DequantizationBuffer);
    }

    [Fact]
    public void Gradients_are_charged_only_for_trainable_parameters()
    {
        var arch = Llama31_8B;
        var frozenHalf = new Job { Method = TrainingMethod.Freeze, FreezePatterns = ["model.embed_tokens", "model.layers.{0..15}"], Precision = Precision.Fp32, Batch = 1, Seq = 64 };
        var l = Ledger(arch, frozenHalf);
        var sel = Planner.Fit.Planner.SelectionFor(arch, frozenHalf);
        Assert.True(sel.TrainableParameters < arch.ParameterCount * 0.6);
        Assert.Equal(sel.TrainableParameters * 4.0, l.Line(LineKind.Gradients).Bytes);
        Assert.Equal(sel.TrainableParameters * 8.0, l.Sum(Category.OptimizerState, Phase.OptimizerStep));

        // PEFT keeps adapters (and so their gradients) in fp32 over a bf16 base; torchtune keeps them in bf16.
        var lora = Ledger(arch, new Job { Method = TrainingMethod.Lora, Batch = 1, Seq = 64 });
        Assert.Equal(41_943_040 * 4.0, lora.Line(LineKind.Gradients).Bytes);
        var bf16Adapters = Ledger(arch, new Job { Method = TrainingMethod.Lora, AdapterDtype = DType.Bf16, Batch = 1, Seq = 64 });
        Assert.Equal(41_943_040 * 2.0, bf16Adapters.Line(LineKind.Gradients).Bytes);
    }

    [Fact]
    public void Frozen_leading_layers_save_no_activations()
    {
        var arch = Llama31_8B;
        var all = Ledger(arch, new Job { Method = TrainingMethod.Full, Batch = 1, Seq = 512 });
        var half = Ledger(arch, new Job { Method = TrainingMethod.Freeze, FreezePatterns = ["model.embed_tokens", "model.layers.{0..15}"], Batch = 1, Seq = 512 });
        double a = all.Sum(Category.Activations, Phase.Forward), h = half.Sum(Category.Activations, Phase.Forward);
        Assert.InRange(h / a, 0.45, 0.55);
    }

    [Fact]
    public void Amp_casts_of_frozen_leading_layers_are_not_kept_for_backward()
    {
        var arch = Llama31_8B;
        var job = new Job { Method = TrainingMethod.Freeze, FreezePatterns = ["model.embed_tokens", "model.layers.{0..15}"], Precision = Precision.AmpBf16, Batch = 1, Seq = 64 };
        var l = Ledger(arch, job);
        var sel = Planner.Fit.Planner.SelectionFor(arch, job);
        long trainableLinear = sel.TrainableBaseTensors.Where(t => t.IsLinearWeight).Sum(t => t.Elements);
        Assert.Equal(2.0 * trainableLinear, l.Line(LineKind.AmpWeightCopies).Bytes);
    }

    [Fact]
    public void Peak_moves_from_optimizer_step_at_small_batch_to_backward_at_large_batch()
    {
        var arch = Llama2_7B;
        var small = Ledger(arch, new Job { Method = TrainingMethod.Full, Precision = Precision.AmpBf16, Batch = 1, Seq = 128 });
        var large = Ledger(arch, new Job { Method = TrainingMethod.Full, Precision = Precision.AmpBf16, Batch = 16, Seq = 2048 });
        Assert.Equal(Phase.OptimizerStep, small.PeakPhase);
        Assert.True(large.PeakPhase is Phase.BackwardStart or Phase.Forward, large.PeakPhase.Name());
    }

    [Fact]
    public void Eager_attention_grows_quadratically_and_sdpa_does_not()
    {
        var arch = Llama31_8B;
        double Scores(int seq, AttentionKernel k) => Ledger(arch, new Job { Method = TrainingMethod.Full, Attention = k, Batch = 1, Seq = seq })
            .Bytes(LineKind.ActivationsAttentionScores);
        Assert.Equal(4 * Scores(1024, AttentionKernel.Eager), Scores(2048, AttentionKernel.Eager), 0);
        // fp32 softmax (4 B) + its bf16 copy (2 B) per head and pair: 6·a·s²·b per layer
        Assert.Equal(32.0 * 6 * 32 * 1024.0 * 1024, Scores(1024, AttentionKernel.Eager), 0);
        Assert.Equal(0, Scores(2048, AttentionKernel.Sdpa));
    }

    [Fact]
    public void Checkpointing_keeps_one_layer_input_per_layer()
    {
        var arch = Llama31_8B;
        var l = Ledger(arch, new Job { Method = TrainingMethod.Full, Checkpointing = Checkpointing.Full, Batch = 2, Seq = 1024 });
        Assert.Equal(32.0 * 2 * 1024 * 4096 * 2, l.Line(LineKind.ActivationCheckpoints).Bytes);
        var none = Ledger(arch, new Job { Method = TrainingMethod.Full, Batch = 2, Seq = 1024 });
        Assert.True(l.BytesAt(Phase.Forward) < none.BytesAt(Phase.Forward));
    }

    [Fact]
    public void Lora_dropout_adds_private_input_copies()
    {
        var arch = Llama31_8B;
        double Lora(double dropout, DType adapters) => Ledger(arch, new Job { Lora = new LoraConfig { Dropout = dropout }, AdapterDtype = adapters, Batch = 1, Seq = 256 })
            .Bytes(LineKind.ActivationsLora);
        // Same-dtype adapters share the base input when dropout is 0; dropout gives each adapter its own copy + mask.
        Assert.True(Lora(0.05, DType.Bf16) > 3 * Lora(0, DType.Bf16));
        // fp32 adapters over a bf16 base keep a private fp32 cast of the input even without dropout.
        Assert.True(Lora(0, DType.Fp32) > 3 * Lora(0, DType.Bf16));
    }

    [Fact]
    public void Components_at_the_peak_sum_to_the_peak_and_total_adds_runtime()
    {
        var l = Ledger(Llama31_8B, new Job());
        Assert.Equal(l.PeakBytes, l.AtPeak.Sum(e => e.Bytes), 0.5 * l.AtPeak.Count() + 1);
        Assert.Equal(l.PeakBytes + l.RuntimeBytes, l.TotalBytes);
        Assert.Contains(l.Runtime, e => e.Kind == LineKind.CudaContext);
        Assert.All(l.Tensors, e => Assert.False(string.IsNullOrEmpty(e.Source)));
    }

    [Fact]
    public void Cpu_device_has_no_cuda_context_and_foreach_temporaries()
    {
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 1, Seq = 64 };
        var cpu = Ledger(Llama2_7B, job, DeviceKind.Cpu);
        // No CUDA context or caching-allocator reserve; only the measured libtorch/TorchSharp CPU training runtime.
        var runtime = Assert.Single(cpu.Runtime);
        Assert.Equal(LineKind.CpuTrainingRuntime, runtime.Kind);
        Assert.Equal(LedgerBuilder.CpuTrainingRuntimeBytes, runtime.Bytes);
        Assert.Equal(cpu.PeakBytes + cpu.RuntimeBytes, cpu.TotalBytes);
        Assert.Empty(Ledger(Llama2_7B, new Job { Task = JobTask.Infer, Precision = Precision.Fp32, Batch = 1, Seq = 64 }, DeviceKind.Cpu).Runtime);
        var gpu = Ledger(Llama2_7B, job);
        Assert.True(cpu.Sum(Category.Temporary, Phase.OptimizerStep) < gpu.Sum(Category.Temporary, Phase.OptimizerStep));
    }

    [Fact]
    public void Ten_to_the_thirteen_parameters_do_not_overflow()
    {
        var huge = Synthetic(hidden: 100_000, layers: 100, heads: 100, kvHeads: 100, inter: 400_000, vocab: 32_000);
        Assert.True(huge.ParameterCount > 10_000_000_000_000L);
        var l = Ledger(huge, new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 8, Seq = 4096 });
        Assert.True(l.PeakBytes > 16 * huge.ParameterCount);
    }

    [Fact]
    public void Absurd_sizes_are_input_errors_not_overflows()
    {
        // Either the architecture reader or the ledger must refuse it by name; nothing may overflow silently.
        var e = Assert.ThrowsAny<Exception>(() =>
        {
            var huge = Synthetic(hidden: 1_000_000, layers: 10_000, heads: 1000, kvHeads: 1000, inter: 4_000_000, vocab: 1_000_000);
            return Ledger(huge, new Job { Method = TrainingMethod.Full, Batch = Job.MaxBatch, Seq = 1_000_000 });
        });
        Assert.True(e is InputError or OverflowException, e.GetType().Name);
    }
}

public class CpuLedgerTests
{
    [Fact]
    public void Cpu_eager_attention_can_peak_inside_the_last_layer_and_sdpa_repeats_kv()
    {
        var arch = Llama31_8B;
        var eager = Ledger(arch, new Job { Method = TrainingMethod.Lora, Precision = Precision.Fp32, Attention = AttentionKernel.Eager, Batch = 1, Seq = 8192 }, Devices.DeviceKind.Cpu);
        Assert.True(eager.BytesAt(Phase.ForwardLastLayer) > eager.BytesAt(Phase.Forward));
        var gpuSdpa = Ledger(arch, new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 1, Seq = 256 });
        var cpuSdpa = Ledger(arch, new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 1, Seq = 256 }, Devices.DeviceKind.Cpu);
        double Core(MemoryLedger l) => l.Line(LineKind.ActivationsAttentionCore).Bytes;
        // On CUDA, fp32 GQA runs SDPA's math fallback: scaled q, repeated k and v at query width (3·4096·4 B per token), the
        // output kept by o_proj instead. On the CPU, Afinado's model repeats K/V before SDPA, which saves q, k, v and the
        // output at query width plus an fp32 log-sum-exp per head: 4·4096·4 + 32·4 B per token per layer.
        Assert.Equal(32.0 * 256 * (4 * 4096 * 4 + 32 * 4 - 3 * 4096 * 4), Core(cpuSdpa) - Core(gpuSdpa), 0);
    }

    [Fact]
    public void Cpu_backward_keeps_the_logits_held_by_the_step_scope()
    {
        var arch = Llama31_8B;
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 1, Seq = 128 };
        double Bwd(MemoryLedger l) => l.Line(LineKind.LossBackward).Bytes;
        Assert.Equal(4.0 * 128 * 128_256, Bwd(Ledger(arch, job, Devices.DeviceKind.Cpu)) - Bwd(Ledger(arch, job)), 0);
    }

    // Loss-flag tests: Llama-3.1-8B LoRA, 2 × 512 tokens, vocabulary 128,256.
    private static readonly Job LossJob = new() { Method = TrainingMethod.Lora, Precision = Precision.Bf16, Batch = 2, Seq = 512 };
    private const double LossTv = 2 * 512 * 128_256.0;
    private static double Entry(MemoryLedger l, LineKind kind) => l.Line(kind).Bytes;

    [Fact]
    public void Legacy_transformers_loss_keeps_fp32_logits_and_a_shifted_copy_in_forward()
    {
        // transformers < 4.46: logits.float() (16-bit logits freed) + logits[..., :-1, :].contiguous() + log_softmax,
        // 12 B per token × vocab; from 4.46: 16-bit logits + fp32 copy + log_softmax, 10 B. Backward is 12 B either way.
        var current = Ledger(Llama31_8B, LossJob);
        var legacy = Ledger(Llama31_8B, LossJob with { LegacyLoss = true });
        Assert.Equal(10 * LossTv, Entry(current, LineKind.LossForward), 0);
        Assert.Equal(12 * LossTv, Entry(legacy, LineKind.LossForward), 0);
        Assert.Equal(Entry(current, LineKind.LossBackward), Entry(legacy, LineKind.LossBackward));
    }

    [Fact]
    public void A_loop_that_keeps_the_output_holds_the_logits_through_backward()
    {
        var arch = Llama31_8B;
        var job = LossJob;
        double tv = LossTv;
        var plain = Ledger(arch, job);
        // Current transformers return 16-bit logits; the legacy path returns the fp32 upcast, so that is what is held.
        foreach (var (keep, heldBytes) in new[] { (job with { KeepOutput = true }, 2.0), (job with { KeepOutput = true, LegacyLoss = true }, 4.0) })
        {
            var held = Ledger(arch, keep);
            Assert.Equal(heldBytes * tv, Entry(held, LineKind.LossBackward) - Entry(plain, LineKind.LossBackward), 0);
            Assert.Equal(heldBytes * tv, Entry(held, LineKind.LogitsGradient) - Entry(plain, LineKind.LogitsGradient), 0);
            Assert.True(held.PeakBytes > plain.PeakBytes);
        }
        // torchtune's chunked loss deletes the logits before backward unless the loop keeps them.
        var chunked = job with { LossChunks = 8 };
        Assert.Equal(2 * tv, Entry(Ledger(arch, chunked with { KeepOutput = true }), LineKind.LossBackward)
            - Entry(Ledger(arch, chunked), LineKind.LossBackward), 0);
    }

    [Fact]
    public void Loss_flags_reject_combinations_they_do_not_describe()
    {
        var chunked = Assert.Throws<InputError>(() => new Job { LegacyLoss = true, LossChunks = 8 }.Validate());
        Assert.Equal(JobParameters.LegacyLoss, chunked.Parameter);
        var infer = Assert.Throws<InputError>(() => new Job { Task = JobTask.Infer, KeepOutput = true }.Validate());
        Assert.Equal(JobParameters.KeepOutput, infer.Parameter);
    }
}
