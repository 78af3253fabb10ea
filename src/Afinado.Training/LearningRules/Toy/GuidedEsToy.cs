using System.Diagnostics;
using Afinado.Training.Optim;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules.Toy;

/// <summary>Settings of the toy reproduction; defaults are the reference notebook's.</summary>
public sealed record GuidedEsToyOptions
{
    public int Steps { get; init; } = 10_000;
    public int N { get; init; } = 1000;
    public int M { get; init; } = 2000;
    public double Sigma { get; init; } = 0.1;
    public double Alpha { get; init; } = 0.5;
    public double Beta { get; init; } = 1.0;
    public int SubspaceDim { get; init; } = 1;
    public int Pairs { get; init; } = 1;
    public double EsLearningRate { get; init; } = 0.2;
    public double SgdLearningRate { get; init; } = 5e-3;
    public ulong Seed { get; init; }
}

/// <summary>Loss curves f(x_t) (before step t, plus the final x at index Steps) and the work each method did.</summary>
public sealed record GuidedEsToyResult(
    GuidedEsToyOptions Options,
    double OptimalLoss,
    IReadOnlyDictionary<string, double[]> Curves,
    IReadOnlyDictionary<string, long> ForwardPasses,
    IReadOnlyDictionary<string, double> Seconds)
{
    public const string GuidedEs = "guided_es", VanillaEs = "vanilla_es", SgdBiased = "sgd_biased";
    public double Final(string method) => Curves[method][^1];
}

/// <summary>
/// Runs the three methods of the paper's Fig. 1b on one <see cref="LeastSquaresToy"/> instance each (same A, b, bias):
/// <list type="bullet">
/// <item><c>sgd_biased</c>: SGD (lr 5e-3) on g̃ = ∇f + b̂‖∇f‖;</item>
/// <item><c>vanilla_es</c>: OpenAI-ES without shaping at σ_ES = σ/√n, SGD lr 0.2/n — exactly the notebook's
/// β/(2σ²)·Δf·ε update with ε = σ/√n·z and lr 0.2 (a unit test holds the two forms equal);</item>
/// <item><c>guided_es</c>: Guided ES on the biased surrogate, α 0.5, β 1, k 1, σ 0.1, SGD lr 0.2.</item>
/// </list>
/// </summary>
public static class GuidedEsToy
{
    public static GuidedEsToyResult Run(GuidedEsToyOptions o, IProgress<(string Method, int Step)>? progress = null)
    {
        if (o.Steps < 1) throw new ArgumentOutOfRangeException(nameof(o), "steps must be ≥ 1");
        var curves = new Dictionary<string, double[]>();
        var passes = new Dictionary<string, long>();
        var seconds = new Dictionary<string, double>();
        double optimal;
        using (var probe = new LeastSquaresToy(o.N, o.M, o.Seed)) optimal = probe.OptimalLoss();

        foreach (var method in new[] { GuidedEsToyResult.SgdBiased, GuidedEsToyResult.VanillaEs, GuidedEsToyResult.GuidedEs })
        {
            using var toy = new LeastSquaresToy(o.N, o.M, o.Seed);
            using var sgd = new Sgd(Optimizers.ByPosition(toy.TrainableParameters), momentum: 0, weightDecay: 0);
            using var rule = Build(method, toy, sgd, o);
            double lr = LearningRate(method, o);
            var curve = new double[o.Steps + 1];
            var sw = Stopwatch.StartNew();
            for (int t = 0; t < o.Steps; t++)
            {
                curve[t] = toy.LossNow();
                rule.Step(RuleStep.Of(t, lr, default));
                if ((t + 1) % 500 == 0) progress?.Report((method, t + 1));
            }
            curve[o.Steps] = toy.LossNow();
            seconds[method] = sw.Elapsed.TotalSeconds;
            curves[method] = curve;
            passes[method] = rule.Counters.ForwardPasses;
        }
        return new GuidedEsToyResult(o, optimal, curves, passes, seconds);
    }

    /// <summary>Each method's SGD step size (the notebook's).</summary>
    private static double LearningRate(string method, GuidedEsToyOptions o) => method switch
    {
        GuidedEsToyResult.SgdBiased => o.SgdLearningRate,
        GuidedEsToyResult.VanillaEs => o.EsLearningRate * o.Beta / o.N,
        _ => o.EsLearningRate,
    };

    private static ILearningRule Build(string method, LeastSquaresToy toy, IOptimizer sgd, GuidedEsToyOptions o)
    {
        ISurrogateGradient Biased() => new BiasedSurrogate(new StaleBackpropSurrogate(toy), toy.UnitBias);
        return method switch
        {
            GuidedEsToyResult.SgdBiased => new SurrogateDescentRule(toy, Biased(), sgd),
            GuidedEsToyResult.VanillaEs => new EsRule(toy, sgd, new EsOptions
            {
                Sigma = o.Sigma / Math.Sqrt(o.N), Pairs = o.Pairs, Shaping = FitnessShaping.None, Seed = o.Seed + 1,
            }),
            GuidedEsToyResult.GuidedEs => new GuidedEsRule(toy, Biased(), sgd, new GuidedEsOptions
            {
                Sigma = o.Sigma, Alpha = o.Alpha, Beta = o.Beta, SubspaceDim = o.SubspaceDim, Pairs = o.Pairs, Seed = o.Seed + 1,
            }),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown toy method"),
        };
    }
}
