using Afinado.Planner.Memory;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Afinado.Training.Loop;

namespace Afinado.Training.Optim;

/// <summary>
/// An optimizer over a fixed list of named parameters (only the trainable ones: frozen tensors never get state).
/// Written here rather than using TorchSharp's so that the state is lazy (allocated at the first step, as in PyTorch,
/// which is what the planner charges), is exactly serialisable by name for bit-exact resume, and is readable. The update
/// ops are PyTorch's single-tensor ones in PyTorch's order, so results equal libtorch's optimizers bit for bit
/// (OptimizerTests). Disposing frees the state tensors at once.
/// </summary>
public interface IOptimizer : IDisposable
{
    string Name { get; }
    IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }
    /// <summary>Updates every parameter that has a gradient, with learning rate <paramref name="lr"/>.</summary>
    void Step(double lr);
    /// <summary>Drops the gradients (set to null, PyTorch's <c>set_to_none=True</c>).</summary>
    void ZeroGrad();
    /// <summary>State tensors keyed <c>{state}/{parameter name}</c> plus scalars (e.g. the step count) as 0-d tensors.</summary>
    Dictionary<string, Tensor> StateDict();
    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state);
}

public static class Optimizers
{
    public static IOptimizer Create(OptimizerKind kind, IReadOnlyList<(string, Parameter)> parameters, double weightDecay, double momentum, double beta1, double beta2, double eps) => kind switch
    {
        OptimizerKind.AdamW => new AdamW(parameters, beta1, beta2, eps, weightDecay),
        OptimizerKind.Sgd => new Sgd(parameters, 0, weightDecay),
        OptimizerKind.SgdMomentum => new Sgd(parameters, momentum, weightDecay),
        _ => throw new InputError(TrainParameters.Optimizer, $"{kind.Name()} has no CPU implementation", "Use adamw, sgd or momentum."),
    };

    /// <summary>By the trainer's word for it (<c>adamw</c>, <c>sgd</c>, <c>momentum</c>).</summary>
    public static IOptimizer Create(string name, IReadOnlyList<(string, Parameter)> parameters, double weightDecay, double momentum, double beta1, double beta2, double eps) =>
        Create(Loop.TrainVocabulary.Optimizer(name), parameters, weightDecay, momentum, beta1, beta2, eps);

    /// <summary>Adam (Kingma &amp; Ba) as PyTorch runs it with no weight decay: AdamW's update with wd = 0, the same ops.</summary>
    public static IOptimizer Adam(IReadOnlyList<(string, Parameter)> parameters, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) =>
        new AdamW(parameters, beta1, beta2, eps, weightDecay: 0);

    /// <summary>Parameters that have no names of their own (a classifier's, a toy's), named by position for state keys.</summary>
    public static IReadOnlyList<(string, Parameter)> ByPosition(IEnumerable<Parameter> parameters) =>
        parameters.Select((p, i) => (i.ToString(System.Globalization.CultureInfo.InvariantCulture), p)).ToList();

    /// <summary>
    /// The update every rule ends its step with: clip the global gradient norm of the optimizer's parameters (when
    /// <paramref name="clipNorm"/> is set), then step at <paramref name="learningRate"/>. Returns the norm before clipping.
    /// </summary>
    public static double? ClipAndStep(IOptimizer optimizer, double learningRate, double? clipNorm)
    {
        double? norm = null;
        if (clipNorm is { } clip) norm = nn.utils.clip_grad_norm_(optimizer.Parameters.Select(t => t.Parameter), clip);
        optimizer.Step(learningRate);
        return norm;
    }

    /// <summary>Bytes of the <c>.grad</c> tensors the optimizer's parameters hold now.</summary>
    public static long GradientBytes(IOptimizer optimizer)
    {
        long bytes = 0;
        foreach (var (_, p) in optimizer.Parameters)
        {
            // Each read of .grad is a new handle: dispose it at once.
            using var g = p.grad;
            if (g is not null) bytes += g.numel() * g.element_size();
        }
        return bytes;
    }

    internal static void ZeroGrad(IEnumerable<(string, Parameter)> parameters)
    {
        foreach (var (_, p) in parameters)
        {
            // Each read of .grad creates a new handle that keeps the gradient alive until disposed: read it once.
            var g = p.grad;
            if (g is null) continue;
            g.Dispose();
            p.grad = null;
        }
    }
}
