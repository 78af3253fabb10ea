using Afinado.Planner.Architecture;
using Afinado.Planner.Export;

namespace Afinado.Planner.Parallel;

/// <summary>What is trained: everything, LoRA adapters over a 16-bit base, or LoRA over an NF4 base (QLoRA).</summary>
public enum AdaptationKind { Full, Lora, QLora }

/// <summary>
/// The training job as the multi-GPU planner sees it, until the single-GPU ledger (issue 2) provides its entries:
/// a decoder from config.json, the adaptation, precision, micro-batch, sequence, checkpointing and attention kernel.
/// <see cref="ParallelJobBuilder"/> turns it into model-state and TP-tagged activation entries.
/// </summary>
public sealed record DecoderJobSpec
{
    public required ModelArchitecture Model { get; init; }
    public AdaptationKind Adaptation { get; init; } = AdaptationKind.Lora;
    public int LoraRank { get; init; } = 16;
    /// <summary>PEFT's lora_dropout; above 0 each adapted linear keeps a dropped copy of its input and a 1-byte mask.</summary>
    public double LoraDropout { get; init; } = 0.05;
    public RunPrecision Precision { get; init; } = RunPrecision.AmpBf16;
    public int MicroBatch { get; init; } = 1;
    public int Seq { get; init; } = 2048;
    public bool Checkpointing { get; init; }
    /// <summary>SDPA/FlashAttention (no s² scores saved) rather than eager attention.</summary>
    public bool FlashAttention { get; init; } = true;
    /// <summary>Caching-allocator slack on top of the peak, as a fraction (same assumption as the single-GPU ledger).</summary>
    public double AllocatorReserveFraction { get; init; } = 0.05;

    public DecoderJobSpec Validate()
    {
        if (MicroBatch < 1 || MicroBatch > 1_000_000)
            throw new InputError("--batch", $"{MicroBatch} is not a usable micro-batch", "Give --batch between 1 and 1000000.");
        if (Seq < 1 || Seq > 10_000_000)
            throw new InputError("--seq", $"{Seq} is not a usable sequence length", "Give --seq between 1 and 10000000.");
        if (Adaptation != AdaptationKind.Full && (LoraRank < 1 || LoraRank > 65_536))
            throw new InputError("--lora-rank", $"{LoraRank} is out of range", "Use a rank between 1 and 65536.");
        if (Adaptation == AdaptationKind.QLora && Precision is RunPrecision.Fp32)
            throw new InputError("--precision", "QLoRA computes in 16-bit", "Use --precision bf16 or amp-bf16 with --method qlora.");
        return this;
    }
}
