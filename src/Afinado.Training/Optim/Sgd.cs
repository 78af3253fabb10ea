using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Optim;

/// <summary>
/// SGD, optionally with heavy-ball momentum, in PyTorch's form (dampening 0, coupled weight decay):
/// g ← g + wd·p; b ← μb + g (b = g at the first step); p ← p − lr·b.
/// </summary>
public sealed class Sgd : IOptimizer
{
    private readonly double momentum, weightDecay;
    private readonly Dictionary<string, Tensor> buffers = new();

    public Sgd(IReadOnlyList<(string, Parameter)> parameters, double momentum, double weightDecay)
    {
        Parameters = parameters;
        this.momentum = momentum;
        this.weightDecay = weightDecay;
    }

    public string Name => momentum > 0 ? "momentum" : "sgd";
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }

    public void Step(double lr)
    {
        using var _ = no_grad();
        foreach (var (name, p) in Parameters)
        {
            using var scope = NewDisposeScope(); // releases the .grad handle and temporaries now, not at a later GC
            var g = p.grad;
            if (g is null) continue;
            var d = weightDecay != 0 ? g.add(p, alpha: weightDecay) : g;
            if (momentum > 0)
            {
                if (!buffers.TryGetValue(name, out var b))
                    buffers[name] = b = d.clone().DetachFromDisposeScope();
                else
                    b.mul_(momentum).add_(d);
                d = b;
            }
            p.add_(d, alpha: -lr);
        }
    }

    public void ZeroGrad() => Optimizers.ZeroGrad(Parameters);

    public Dictionary<string, Tensor> StateDict() =>
        buffers.ToDictionary(kv => "momentum_buffer/" + kv.Key, kv => kv.Value);

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        foreach (var (name, p) in Parameters)
            if (state.TryGetValue("momentum_buffer/" + name, out var b))
                buffers[name] = b.to(p.dtype).clone().DetachFromDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in buffers.Values) t.Dispose();
        buffers.Clear();
    }
}
