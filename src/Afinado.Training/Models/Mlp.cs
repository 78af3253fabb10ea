using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// A plain multi-layer perceptron for image classification (Fashion-MNIST: 784 → hidden… → 10). Input [N, …] is
/// flattened. Layers are named <c>fc1</c>, <c>fc2</c>, … and exposed through <see cref="Layers"/> so learning rules that
/// need per-layer access (DFA feedback, ES stacking) can drive them directly.
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly Func<Tensor, Tensor> activation;

    public Mlp(long inputs, IReadOnlyList<long> hidden, long outputs, string activation = "relu") : base(nameof(Mlp))
    {
        var widths = new List<long> { inputs };
        widths.AddRange(hidden);
        widths.Add(outputs);
        var layers = new List<Linear>();
        for (int i = 0; i + 1 < widths.Count; i++)
        {
            var l = nn.Linear(widths[i], widths[i + 1]);
            register_module($"fc{i + 1}", l);
            layers.Add(l);
        }
        Layers = layers;
        ActivationName = activation;
        this.activation = Activations.Get(activation);
    }

    /// <summary>Fashion-MNIST default: 784 → 256 → 256 → 10.</summary>
    public static Mlp ForFashionMnist(long hidden = 256, int depth = 2) =>
        new(28 * 28, Enumerable.Repeat(hidden, depth).ToList(), 10);

    public IReadOnlyList<Linear> Layers { get; }
    public string ActivationName { get; }
    public Tensor Activate(Tensor x) => activation(x);

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.flatten(1);
        for (int i = 0; i < Layers.Count; i++)
        {
            h = Layers[i].call(h);
            if (i + 1 < Layers.Count) h = activation(h);
        }
        return h.MoveToOuterDisposeScope();
    }
}
