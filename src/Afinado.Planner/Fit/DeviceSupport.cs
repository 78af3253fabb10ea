using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>
/// Weights a GPU cannot compute in their stored format are dequantized by transformers when the model loads, so on that
/// GPU the job holds 16-bit weights. The verdict for such a device judges the dequantized job (<see cref="FitCheck"/>),
/// which is the plan <c>--weights-dtype bf16</c> gives.
/// </summary>
public sealed record Dequantization(DType From, ComputeCapability Needs, ComputeCapability Has, string Source)
{
    public DType To => DType.Bf16;

    /// <summary>The sentence a verdict prints: what happens on the device and why.</summary>
    public string Reason =>
        $"{From.Name()} weights need compute capability {Needs} and this GPU has {Has}: transformers dequantizes them to {To.Name()} when the model loads ({Source})";
}

public static class DeviceSupport
{
    private const string Mxfp4Source = "transformers quantizers/quantizer_mxfp4.py validate_environment: compute_capability >= (7, 5), else dequantize = True";
    private const string Fp8Source = "transformers quantizers/quantizer_finegrained_fp8.py validate_environment: below 8.9 \"We will default to dequantizing the model to bf16\"";

    private static readonly ComputeCapability Mxfp4Kernels = new(7, 5), Fp8Kernels = new(8, 9);

    /// <summary>What loading <paramref name="job"/>'s weights on <paramref name="device"/> changes, or null when they load as planned
    /// (CPU devices, GPUs of unknown capability, and every format other than MXFP4 and FP8 weights).</summary>
    public static Dequantization? For(Job job, Device device)
    {
        if (CapabilityOf(device) is not { } has) return null;
        var (needs, source) = job.ResolvedWeightsDtype switch
        {
            DType.Mxfp4 => (Mxfp4Kernels, Mxfp4Source),
            DType.Fp8 => (Fp8Kernels, Fp8Source),
            _ => (default(ComputeCapability?), ""),
        };
        return needs is { } n && has.IsBelow(n) ? new Dequantization(job.ResolvedWeightsDtype, n, has, source) : null;
    }

    private static readonly ComputeCapability Ampere = new(8, 0), Hopper = new(9, 0);

    /// <summary>
    /// Why the job cannot run on the device at all, or null. flash_attention_2 is built for Ampere and later (flash-attn
    /// README: "Ampere, Ada, or Hopper GPUs"; transformers' attn_implementation="flash_attention_2" needs the package);
    /// the only flash kernel with attention sinks (gpt_oss) is kernels-community/vllm-flash-attn3, FlashAttention-3, built for
    /// Hopper alone (flash-attention README: "Requirements: H100 / H800 GPU"), so neither earlier GPUs nor Blackwell's 10.x
    /// and 12.x run it.
    /// </summary>
    public static InputText? Unsupported(Architecture.ModelArchitecture arch, Job job, Device device)
    {
        if (CapabilityOf(device) is not { } has || job.Attention != AttentionKernel.Flash) return null;
        // Separate returns, not conditionals: a conditional of interpolated strings is a string, and the flag would lose its type.
        if (arch.SupportsSdpa)
        {
            if (!has.IsBelow(Ampere)) return null;
            return $"flash_attention_2 (flash-attn 2: Ampere, Ada or Hopper) needs compute capability {Ampere} and this GPU has {has}; use {JobParameters.Attention} sdpa";
        }
        // FlashAttention-3 requires "H100 / H800 GPU" (Hopper's wgmma and TMA): Blackwell's 10.x and 12.x do not run it either.
        if (has.Major == Hopper.Major) return null;
        return $"the sinks' flash kernel, kernels-community/vllm-flash-attn3 (FlashAttention-3), runs on Hopper (compute capability {Hopper}) only and this GPU has {has}; use {JobParameters.Attention} eager";
    }

    /// <summary>
    /// Advice that changes no byte: bf16 compute on a GPU without native bf16 (below 8.0: Turing, Volta). PyTorch's
    /// <c>torch.cuda.is_bf16_supported()</c> defaults to <c>including_emulation=True</c> and passes there (it only allocates a
    /// bf16 tensor), so transformers' Trainer accepts <c>bf16=True</c> (<c>is_torch_bf16_gpu_available</c>) and the run
    /// starts, emulated; fp16 is the card's native 16-bit type, with the same bytes.
    /// </summary>
    public static InputText? Advice(Job job, Device device)
    {
        if (CapabilityOf(device) is not { } has || !has.IsBelow(Ampere)) return null;
        if (job.Precision is not (Precision.Bf16 or Precision.AmpBf16)) return null;
        string native = job.Precision == Precision.Bf16 ? "fp16" : "amp-fp16";
        return $"no native bf16 below compute capability {Ampere} (this GPU has {has}): torch.cuda.is_bf16_supported() passes by emulation, " +
            $"so the run starts but bf16 math is emulated (slow, and some kernels raise \"not implemented for 'BFloat16'\"); " +
            $"{JobParameters.Precision} {native} is its native 16-bit type, with the same memory";
    }

    /// <summary>
    /// Why a step's SDPA (training, prefill or decode) runs PyTorch's math kernel on this GPU and would not on Ampere or
    /// later, or null: below 8.0 no flash or cuDNN kernel runs and the memory-efficient one takes neither bf16 nor grouped KV
    /// heads (<see cref="ActivationModel.SdpaFallsBackToMath"/>). The math kernel materialises each layer's b·heads·s²
    /// scores and their softmax; training keeps the probabilities for backward.
    /// </summary>
    public static string? SdpaMath(Architecture.ModelArchitecture arch, Job job, Device device)
    {
        if (CapabilityOf(device) is not { } has || !has.IsBelow(Ampere)) return null;
        if (job.Attention != AttentionKernel.Sdpa || job.PreAmpereGpu) return null;
        bool bf16 = job.Precision.ComputeDType() == DType.Bf16, gqa = arch.NumKvHeads < arch.NumHeads;
        double c = job.Precision.ComputeBytes();
        bool repeated = ActivationModel.KvRepeatedForMask(job);
        if (!ActivationModel.SdpaFallsBackToMath(arch, c, preAmpere: true, bf16, repeated) || ActivationModel.SdpaFallsBackToMath(arch, c, kvRepeated: repeated)) return null;
        string why = gqa && !repeated ? $"grouped KV heads ({arch.NumKvHeads} for {arch.NumHeads})" : "bf16 inputs";
        return $"SDPA has no fused kernel for {why} below compute capability {Ampere} (this GPU has {has}: no flash or cuDNN " +
            "attention, and memory-efficient attention takes only fp16/fp32 with equal head counts, sdp_utils.cpp), so it runs the " +
            "math kernel, which materialises b·heads·s² scores and their softmax in every layer" + (job.IsTraining ? " (the probabilities kept for backward)" : "");
    }

    /// <summary>The job as it runs on the device: with 16-bit weights where <see cref="For"/> says they are dequantized, and
    /// with SDPA's pre-Ampere dispatch where <see cref="SdpaMath"/> says it changes the step. The same instance when neither
    /// applies, so a job the device runs as planned keeps its replay (cached by job).</summary>
    public static Job OnDevice(Architecture.ModelArchitecture arch, Job job, Device device)
    {
        if (For(job, device) is { } d) job = job with { WeightsDtype = d.To };
        if (SdpaMath(arch, job, device) is not null) job = job with { PreAmpereGpu = true };
        return job;
    }

    /// <summary>A GPU's compute capability; null for the CPU and GPUs of unknown capability, where no rule here applies.</summary>
    private static ComputeCapability? CapabilityOf(Device device) => device.Kind == DeviceKind.Gpu ? device.Capability : null;
}
