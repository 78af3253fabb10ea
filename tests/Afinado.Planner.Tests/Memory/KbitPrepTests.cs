using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

/// <summary>PEFT's prepare_model_for_kbit_training and transformers' flash_attention_2, as the HF QLoRA recipe runs them.</summary>
public class KbitPrepTests
{
    private static readonly Job Qlora = new() { Method = TrainingMethod.QLora, Checkpointing = Checkpointing.Full, Seq = 4096, Attention = AttentionKernel.Flash };

    [Fact]
    public void Embeddings_norms_and_head_are_stored_in_fp32()
    {
        var plain = Ledger(Llama31_8B, Qlora);
        var prepared = Ledger(Llama31_8B, Qlora with { KbitPrep = true });
        Assert.Equal(2 * plain.Line(LineKind.WeightsSkippedByQuantizer).Bytes, prepared.Line(LineKind.WeightsSkippedByQuantizer).Bytes);
        Assert.Equal(plain.Line(LineKind.WeightsFrozenQuantized).Bytes, prepared.Line(LineKind.WeightsFrozenQuantized).Bytes);
    }

    [Fact]
    public void The_residual_stream_and_so_the_checkpoints_are_fp32()
    {
        var plain = Ledger(Llama31_8B, Qlora);
        var prepared = Ledger(Llama31_8B, Qlora with { KbitPrep = true });
        Assert.Equal(2 * plain.Line(LineKind.ActivationCheckpoints).Bytes, prepared.Line(LineKind.ActivationCheckpoints).Bytes);
        Assert.True(prepared.PeakBytes > plain.PeakBytes);
    }

    [Fact]
    public void In_pure_fp32_sdpa_falls_back_to_the_math_kernel_and_flash_cannot_run()
    {
        // fp32 compute with grouped KV heads: torch SDPA runs its math kernel (b·heads·s² saved). flash_attention_2 gets
        // fp32 queries there (get_target_dtype casts to the first Linear's fp32 weight dtype), which flash-attn refuses.
        var fp32 = new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Seq = 1024 };
        var sdpa = Ledger(Llama31_8B, fp32);
        Assert.Contains(sdpa.Tensors, e => e.Kind == LineKind.ActivationsAttentionScores);
        var e = Assert.Throws<InputError>(() => Ledger(Llama31_8B, fp32 with { Attention = AttentionKernel.Flash }));
        Assert.Equal(JobParameters.Attention, e.Parameter);
        Assert.Contains("amp-bf16", e.Fix.ToString());
    }

    [Fact]
    public void After_kbit_prep_sdpa_runs_fused_in_16_bits_as_the_trainers_autocast_makes_it()
    {
        var job = Qlora with { KbitPrep = true, Checkpointing = Checkpointing.None, Seq = 2048 };
        var sdpa = Ledger(Llama31_8B, job with { Attention = AttentionKernel.Sdpa });
        var flash = Ledger(Llama31_8B, job);
        Assert.DoesNotContain(sdpa.Tensors, e => e.Kind == LineKind.ActivationsAttentionScores);
        Assert.Equal(flash.Line(LineKind.ActivationsAttentionCore).Bytes, sdpa.Line(LineKind.ActivationsAttentionCore).Bytes);
    }

    [Fact]
    public void Kbit_prep_needs_a_quantized_base() =>
        Assert.Equal(JobParameters.KbitPrep, Assert.Throws<InputError>(() => Ledger(Llama31_8B, new Job { Method = TrainingMethod.Lora, KbitPrep = true })).Parameter);

    [Fact]
    public void Its_fp32_step_is_replayed_and_the_trace_agrees_with_the_ledger()
    {
        var job = Qlora with { KbitPrep = true, KeepOutput = true, LegacyLoss = true };
        var l = Ledger(Llama31_8B, job);
        var r = Assert.IsType<global::Afinado.Planner.Allocator.ReplayResult>(l.Replay);
        Assert.InRange((r.PeakAllocatedBytes - global::Afinado.Planner.Allocator.RuntimeStack.Default.WorkspaceBytes) / (double)l.PeakBytes, 0.98, 1.02);
        Assert.Contains(l.Runtime, e => e.Kind == LineKind.AllocatorFragmentation);
    }
}
