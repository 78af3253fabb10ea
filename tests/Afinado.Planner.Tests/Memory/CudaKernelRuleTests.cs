using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

/// <summary>Rules the H100 ground truth (bench/ground-truth/gpu-nvidia-h100-80gb-hbm3-2026-11-26.csv) settled.</summary>
public class CudaKernelRuleTests
{
    private static double Scores(MemoryLedger l) => l.Bytes(LineKind.ActivationsAttentionScores);

    [Fact]
    public void Fp32_sdpa_with_gqa_falls_back_to_the_math_kernel_and_saves_the_softmax()
    {
        // Llama-3.1-8B: 32 heads over 8 KV heads. No fused CUDA kernel takes fp32 with unequal head counts.
        var fp32 = Ledger(Llama31_8B, new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 2, Seq = 1024 });
        Assert.Equal(32.0 * 2 * 32 * 1024 * 1024 * 4, Scores(fp32), 0);
        // bf16 runs flash attention (GQA native), and fp32 without GQA (Llama-2-7B) runs memory-efficient attention: no s².
        var bf16 = Ledger(Llama31_8B, new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, Batch = 2, Seq = 1024 });
        var mha = Ledger(Llama2_7B, new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 2, Seq = 1024 });
        Assert.Equal(0, Scores(bf16));
        Assert.Equal(0, Scores(mha));
        // The CPU engine (TorchSharp) never takes this CUDA dispatch.
        var cpu = Ledger(Llama31_8B, new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 2, Seq = 1024 }, Planner.Devices.DeviceKind.Cpu);
        Assert.Equal(0, Scores(cpu));
    }

    [Fact]
    public void The_head_gradient_is_not_live_with_the_saved_log_softmax()
    {
        var l = Ledger(Llama31_8B, new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, Batch = 1, Seq = 2048 });
        var head = l.Line(LineKind.GradientHead);
        Assert.Equal(Phase.BackwardHead, head.Phases);
        Assert.Equal(128256.0 * 4096 * 2, head.Bytes, 0);
        // At the head's backward only the logits' gradient (c·T·V) remains of the cross-entropy's tensors.
        Assert.Equal(2048.0 * 128256 * 2, l.Sum(Category.Logits, Phase.BackwardHead), 0);
        Assert.Equal(2048.0 * 128256 * 12, l.Sum(Category.Logits, Phase.BackwardStart), 0);
    }

    [Fact]
    public void Bf16_eager_prefill_holds_the_input_its_fp32_copy_and_the_fp32_softmax()
    {
        // ATen softmax(x, dtype=float32) converts a bf16 x to fp32 before the kernel (only CUDA half has a fused path):
        // x (2) + copy (4) + output (4) = 10 B per score; fp16 skips the copy (6 B).
        double Prefill(Precision p) => Ledger(Llama31_8B, new Job { Task = JobTask.Infer, Precision = p, Attention = AttentionKernel.Eager, Batch = 1, Seq = 4096 })
            .Line(LineKind.PrefillActivations).Bytes;
        Assert.Equal(4.0 * 32 * 4096 * 4096, Prefill(Precision.Bf16) - Prefill(Precision.Fp16), 0);
    }
}

public class AutocastRuleTests
{
    private static readonly LineKind[] AmpCopies =
        [LineKind.AmpWeightCopies, LineKind.AmpWeightCopiesOfCheckpointedLayers, LineKind.AmpWeightCopiesOfRecomputedLayer, LineKind.AmpWeightCopyOfHead];

    private static double AmpCopiesAtBackwardStart(MemoryLedger l) =>
        l.Tensors.Where(e => AmpCopies.Contains(e.Kind) && (e.Phases & Phase.BackwardStart) != 0).Sum(e => e.Bytes);

    [Fact]
    public void Checkpointed_layers_lose_their_autocast_copies_when_the_forward_context_exits()
    {
        var arch = Llama31_8B;
        Job Amp(Checkpointing ck) => new() { Method = TrainingMethod.Full, Precision = Precision.AmpBf16, Batch = 1, Seq = 1024, Checkpointing = ck };
        var none = Ledger(arch, Amp(Checkpointing.None));
        var full = Ledger(arch, Amp(Checkpointing.Full));
        double head = 128256.0 * 4096;
        // Without checkpointing autograd keeps every 16-bit copy; with it only the (not checkpointed) head's survives.
        Assert.Equal(2 * (arch.ParameterCount - 2 * head - 32 * 2 * 4096 - 4096 + head), AmpCopiesAtBackwardStart(none), 0);
        Assert.Equal(2 * head, AmpCopiesAtBackwardStart(full), 0);
        Assert.Equal(none.Sum(Category.Weights, Phase.Forward), full.Sum(Category.Weights, Phase.Forward), 0);
    }

    [Fact]
    public void Under_amp_o_proj_saves_the_sdpa_output_it_shares()
    {
        // SDPA's output is bf16 under autocast, so o_proj's input cast is a no-op: AMP saves no more attention tensors than bf16.
        double Attn(Precision p) => Ledger(Llama31_8B, new Job { Method = TrainingMethod.Full, Precision = p, Batch = 1, Seq = 1024 })
            .Bytes(LineKind.ActivationsAttentionCore);
        Assert.Equal(Attn(Precision.Bf16), Attn(Precision.AmpBf16), 0);
    }
}
