using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Optim;

/// <summary>
/// AdamW (Loshchilov &amp; Hutter), PyTorch's update order: p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g;
/// v ← β₂v + (1−β₂)g²; p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε). Weight decay is explicit (no silent default).
/// </summary>
public sealed class AdamW : IOptimizer
{
    private readonly double beta1, beta2, eps, weightDecay;
    private readonly Dictionary<string, Tensor> expAvg = new(), expAvgSq = new();
    private long step;

    public AdamW(IReadOnlyList<(string, Parameter)> parameters, double beta1, double beta2, double eps, double weightDecay)
    {
        Parameters = parameters;
        (this.beta1, this.beta2, this.eps, this.weightDecay) = (beta1, beta2, eps, weightDecay);
    }

    public string Name => "adamw";
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }

    public void Step(double lr)
    {
        step++;
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        using var _ = no_grad();
        foreach (var (name, p) in Parameters)
        {
            // Every TorchSharp call returns a new handle, in-place ones and .grad reads included; the scope releases
            // them now rather than at some later GC (a held .grad handle keeps a whole gradient alive after zero_grad).
            using var scope = NewDisposeScope();
            var g = p.grad;
            if (g is null) continue;
            if (!expAvg.TryGetValue(name, out var m))
            {
                m = expAvg[name] = zeros_like(p).DetachFromDisposeScope();
                expAvgSq[name] = zeros_like(p).DetachFromDisposeScope();
            }
            var v = expAvgSq[name];
            if (weightDecay != 0) p.mul_(1 - lr * weightDecay);
            m.mul_(beta1).add_(g, alpha: 1 - beta1);
            v.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
            var denom = v.sqrt().div_(Math.Sqrt(bc2)).add_(eps);
            p.addcdiv_(m, denom, value: -lr / bc1);
        }
    }

    public void ZeroGrad() => Optimizers.ZeroGrad(Parameters);

    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor> { ["step"] = tensor(step) };
        foreach (var (k, t) in expAvg) d["exp_avg/" + k] = t;
        foreach (var (k, t) in expAvgSq) d["exp_avg_sq/" + k] = t;
        return d;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        step = state["step"].item<long>();
        foreach (var (name, p) in Parameters)
        {
            if (!state.TryGetValue("exp_avg/" + name, out var m)) continue;
            expAvg[name] = m.to(p.dtype).clone().DetachFromDisposeScope();
            expAvgSq[name] = state["exp_avg_sq/" + name].to(p.dtype).clone().DetachFromDisposeScope();
        }
    }

    public void Dispose()
    {
        foreach (var t in expAvg.Values) t.Dispose();
        expAvg.Clear();
        foreach (var t in expAvgSq.Values) t.Dispose();
        expAvgSq.Clear();
    }
}
