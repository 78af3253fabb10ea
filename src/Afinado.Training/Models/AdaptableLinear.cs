using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// A linear layer y = x·Wᵀ + b whose parameters keep their Hugging Face names (<c>weight</c>, <c>bias</c>) and which can
/// grow a LoRA adapter in place: y += (α/r) · B(A(dropout(x))), with <c>lora_A.weight</c> [r, in] and
/// <c>lora_B.weight</c> [out, r] named as PEFT saves them. A is Kaiming-uniform (a = √5) and B is zero, as in PEFT,
/// so an adapter starts as an exact no-op.
/// </summary>
public sealed class AdaptableLinear : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly Parameter weight;
    private readonly Parameter? bias;
    private Linear? loraA, loraB;
    private Dropout? loraDropout;

    public AdaptableLinear(long inFeatures, long outFeatures, bool hasBias) : base(nameof(AdaptableLinear))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = new Parameter(empty(outFeatures, inFeatures));
        register_parameter("weight", weight);
        if (hasBias)
        {
            bias = new Parameter(zeros(outFeatures));
            register_parameter("bias", bias);
        }
    }

    public long InFeatures { get; }
    public long OutFeatures { get; }
    public Parameter Weight => weight;
    public Parameter? Bias => bias;
    public bool HasLora => loraA is not null;
    public int LoraRank { get; private set; }
    public double LoraScaling { get; private set; }
    public Parameter? LoraA => loraA?.weight;
    public Parameter? LoraB => loraB?.weight;

    /// <summary>Adds a LoRA adapter of rank <paramref name="rank"/> (PEFT init: A Kaiming-uniform a=√5, B zeros).</summary>
    public void AddLora(int rank, double alpha, double dropout)
    {
        if (HasLora) throw new InvalidOperationException("This layer already has a LoRA adapter.");
        LoraRank = rank;
        LoraScaling = alpha / rank;
        loraA = nn.Linear(InFeatures, rank, hasBias: false);
        loraB = nn.Linear(rank, OutFeatures, hasBias: false);
        using (no_grad())
        {
            nn.init.kaiming_uniform_(loraA.weight!, a: Math.Sqrt(5));
            nn.init.zeros_(loraB.weight!);
        }
        register_module("lora_A", loraA);
        register_module("lora_B", loraB);
        if (dropout > 0)
        {
            loraDropout = nn.Dropout(dropout);
            register_module("lora_dropout", loraDropout);
        }
    }

    /// <summary>W ← W + (α/r)·B·A, then drops the adapter: the layer computes the same function with no extra cost.</summary>
    public void MergeLora()
    {
        if (!HasLora) return;
        using (no_grad())
        {
            using var delta = loraB!.weight!.matmul(loraA!.weight!).mul_(LoraScaling);
            weight.add_(delta);
        }
        // Remove the adapter modules so the state dict is the plain Hugging Face layout again.
        _internal_submodules.Remove("lora_A");
        _internal_submodules.Remove("lora_B");
        if (loraDropout is not null) _internal_submodules.Remove("lora_dropout");
        loraA.Dispose();
        loraB.Dispose();
        loraA = loraB = null;
        loraDropout = null;
        LoraRank = 0;
        LoraScaling = 0;
    }

    public override Tensor forward(Tensor x)
    {
        if (loraA is null) return nn.functional.linear(x, weight, bias);
        // y is created inside this scope on purpose: in-place add_ returns y itself, and MoveToOuterDisposeScope moves a
        // tensor one scope out from the scope that owns it. Created in the caller's scope, y would be moved past the
        // caller and outlive it (measured: one output per adapted block held until the model's forward ended).
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(x, weight, bias);
        var input = loraDropout is null ? x : loraDropout.call(x);
        var delta = loraB!.call(loraA.call(input)).mul_(LoraScaling);
        return y.add_(delta).MoveToOuterDisposeScope();
    }
}
