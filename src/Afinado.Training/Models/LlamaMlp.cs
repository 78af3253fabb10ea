using Afinado.Planner;
using Afinado.Planner.Architecture;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>Gated feed-forward block: down(act(gate(x)) · up(x)) (SwiGLU for silu).</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly AdaptableLinear gateProj, upProj, downProj;
    private readonly Func<Tensor, Tensor> activation;

    public LlamaMlp(ModelArchitecture arch) : base(nameof(LlamaMlp))
    {
        gateProj = new AdaptableLinear(arch.HiddenSize, arch.IntermediateSize, arch.MlpBias);
        upProj = new AdaptableLinear(arch.HiddenSize, arch.IntermediateSize, arch.MlpBias);
        downProj = new AdaptableLinear(arch.IntermediateSize, arch.HiddenSize, arch.MlpBias);
        register_module("gate_proj", gateProj);
        register_module("up_proj", upProj);
        register_module("down_proj", downProj);
        activation = Activations.Get(arch.Activation);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = activation(gateProj.call(x)).mul_(upProj.call(x));
        return downProj.call(h).MoveToOuterDisposeScope();
    }
}

/// <summary>Hugging Face activation names → TorchSharp functions.</summary>
internal static class Activations
{
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "silu" or "swish" => t => nn.functional.silu(t),
        "gelu" => t => nn.functional.gelu(t),
        "gelu_pytorch_tanh" or "gelu_new" => t => nn.functional.gelu(t, TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => t => nn.functional.relu(t),
        _ => throw new InputError("config.json: hidden_act", $"activation \"{name}\" is not supported by the trainer", "Use silu, gelu, gelu_pytorch_tanh, gelu_new or relu."),
    };
}
