using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>RMSNorm as in transformers' LlamaRMSNorm: x · rsqrt(mean(x²) + eps) · weight (computed in fp32).</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly Parameter weight;
    private readonly double eps;

    public RmsNorm(long dim, double eps) : base(nameof(RmsNorm))
    {
        this.eps = eps;
        weight = new Parameter(ones(dim));
        register_parameter("weight", weight);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var variance = x.pow(2).mean(new long[] { -1 }, keepdim: true);
        var normed = x * (variance + eps).rsqrt();
        return (normed * weight).MoveToOuterDisposeScope();
    }
}
