using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// LeNet-5-style CNN for 28×28 grey images: conv1 (1→6, 5×5, pad 2) → pool → conv2 (6→16, 5×5) → pool →
/// fc1 (400→120) → fc2 (120→84) → fc3 (84→10). The shape biotorch benchmarks DFA on.
/// </summary>
public sealed class LeNet : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly Func<Tensor, Tensor> activation;

    public LeNet(long classes = 10, string activation = "relu") : base(nameof(LeNet))
    {
        Conv1 = nn.Conv2d(1, 6, 5, padding: 2);
        Conv2 = nn.Conv2d(6, 16, 5);
        Fc1 = nn.Linear(16 * 5 * 5, 120);
        Fc2 = nn.Linear(120, 84);
        Fc3 = nn.Linear(84, classes);
        register_module("conv1", Conv1);
        register_module("conv2", Conv2);
        register_module("fc1", Fc1);
        register_module("fc2", Fc2);
        register_module("fc3", Fc3);
        ActivationName = activation;
        this.activation = Activations.Get(activation);
    }

    public Conv2d Conv1 { get; }
    public Conv2d Conv2 { get; }
    public Linear Fc1 { get; }
    public Linear Fc2 { get; }
    public Linear Fc3 { get; }
    public string ActivationName { get; }
    public Tensor Activate(Tensor x) => activation(x);

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (x.dim() == 2) x = x.view(-1, 1, 28, 28);
        var h = nn.functional.max_pool2d(activation(Conv1.call(x)), 2);
        h = nn.functional.max_pool2d(activation(Conv2.call(h)), 2);
        h = activation(Fc1.call(h.flatten(1)));
        h = activation(Fc2.call(h));
        return Fc3.call(h).MoveToOuterDisposeScope();
    }
}
