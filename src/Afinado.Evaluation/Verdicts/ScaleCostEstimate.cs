using Afinado.Planner;
using Afinado.Planner.Catalog;

namespace Afinado.Evaluation.Verdicts;

/// <summary>
/// GPU-hours the same finetune (same number of training tokens) would take on a real model, from the training-compute
/// rule C ≈ 6·P·D (forward 2PD + backward 4PD; EleutherAI "Transformer Math 101", reference memory.md §1.1) divided
/// by the FLOP/s a GPU actually sustains (default 150 TFLOP/s, the post's A100 rule of thumb for GPT-NeoX).
/// Full-parameter backprop; it is a compute estimate, not a memory plan (the planner answers whether it fits).
/// </summary>
public static class ScaleCostEstimate
{
    public const double DefaultSustainedTflops = 150;

    public static (double GpuHours, string Model, long Parameters) ForTokens(string model, long tokens, double sustainedTflops = DefaultSustainedTflops)
    {
        if (!(sustainedTflops > 0 && sustainedTflops < 1e6))
            throw new InputError(EvalParameters.ScaleTflops, $"{sustainedTflops} is not a usable sustained TFLOP/s", "Give the FLOP/s one GPU actually sustains, in TFLOP/s (e.g. 150 for an A100, about 400 for an H100).");
        var arch = ModelSource.Resolve(model);
        var flops = 6.0 * arch.ParameterCount * tokens;
        return (flops / (sustainedTflops * 1e12) / 3600, arch.Name, arch.ParameterCount);
    }
}
