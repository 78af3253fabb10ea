using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// RMSNorm as in transformers' LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · weight (computed in fp32). With an
/// <c>offset</c> of 1 it is GemmaRMSNorm: x̂ · (1 + weight), the weight starting at zero.
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly Parameter weight;
    private readonly double eps, offset;

    public RmsNorm(long dim, double eps, double offset = 0) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        this.offset = offset;
        weight = new Parameter(offset == 0 ? ones(dim) : zeros(dim));
        register_parameter("weight", weight);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var variance = x.pow(2).mean(new long[] { -1 }, keepdim: true);
        var normed = x * (variance + eps).rsqrt();
        return (offset == 0 ? normed * weight : normed * (weight + offset)).MoveToOuterDisposeScope();
    }
}
