using Afinado.Planner;
using Afinado.Planner.Architecture;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>Gated feed-forward block: down(act(gate(x)) · up(x)) (SwiGLU for silu). Phi-3 fuses gate and up into one
/// <c>gate_up_proj</c> whose first half is the gate (Phi3MLP: <c>gate, up = gate_up_proj(x).chunk(2, -1)</c>).</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly AdaptableLinear? gateProj, upProj, gateUpProj;
    private readonly AdaptableLinear downProj;
    private readonly Func<Tensor, Tensor> activation;
    private readonly long width;

    public LlamaMlp(ModelArchitecture arch, int layer = 0) : base(nameof(LlamaMlp))
    {
        width = arch.IntermediateSize;
        if (arch.Tensors.Any(t => t.Role == TensorRole.MlpGateUp && t.Layer == layer))
        {
            gateUpProj = new AdaptableLinear(arch.HiddenSize, 2 * arch.IntermediateSize, arch.MlpBias);
            register_module("gate_up_proj", gateUpProj);
        }
        else
        {
            gateProj = new AdaptableLinear(arch.HiddenSize, arch.IntermediateSize, arch.MlpBias);
            upProj = new AdaptableLinear(arch.HiddenSize, arch.IntermediateSize, arch.MlpBias);
            register_module("gate_proj", gateProj);
            register_module("up_proj", upProj);
        }
        downProj = new AdaptableLinear(arch.IntermediateSize, arch.HiddenSize, arch.MlpBias);
        register_module("down_proj", downProj);
        activation = Activations.Get(arch.Activation);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor h;
        if (gateUpProj is not null)
        {
            var gateUp = gateUpProj.call(x);
            h = activation(gateUp.narrow(-1, 0, width)).mul_(gateUp.narrow(-1, width, width));
        }
        else
            h = activation(gateProj!.call(x)).mul_(upProj!.call(x));
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
