using Afinado.Training.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>Guided ES settings, named as in Maheswaranathan et al. (ICML 2019) and the reference notebook.</summary>
public sealed record GuidedEsOptions
{
    /// <summary>Overall perturbation scale σ.</summary>
    public double Sigma { get; init; } = 0.1;
    /// <summary>Trade-off α: 1 = isotropic (vanilla) ES, 0 = search only inside the surrogate subspace.</summary>
    public double Alpha { get; init; } = 0.5;
    /// <summary>Scale β of the estimate g = β/(2σ²P)·Σ ε_i (f(θ+ε_i) − f(θ−ε_i)).</summary>
    public double Beta { get; init; } = 1.0;
    /// <summary>k: how many recent surrogate gradients span the guiding subspace.</summary>
    public int SubspaceDim { get; init; } = 1;
    /// <summary>P antithetic pairs per step.</summary>
    public int Pairs { get; init; } = 1;
    public int PopulationChunkPairs { get; init; } = 16;
    public ulong Seed { get; init; }

    internal void Validate()
    {
        if (!(Sigma > 0)) throw new ArgumentOutOfRangeException(nameof(Sigma), "σ must be > 0");
        if (!(Alpha >= 0 && Alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(Alpha), "α must be in [0, 1]");
        if (SubspaceDim < 1) throw new ArgumentOutOfRangeException(nameof(SubspaceDim), "k must be ≥ 1");
        if (Pairs < 1) throw new ArgumentOutOfRangeException(nameof(Pairs), "need at least one antithetic pair");
    }
}

/// <summary>
/// Guided ES: keep the last k surrogate gradients, orthonormalise them by QR into U (n×k), and sample
/// ε = σ·√(α/n)·z_n + σ·√((1−α)/k)·U·z_k, which is N(0, σ²Σ) with Σ = α/n·I + (1−α)/k·UUᵀ — Σ is never formed.
/// The estimate g = β/(2σ²P)·Σ_i ε_i·(f(θ+ε_i) − f(θ−ε_i)) keeps the 1/P factor (evosax drops it; the paper does not)
/// and goes to the optimizer as .grad. z_n is drawn first from each pair's seed, so with α = 1 the perturbations are
/// exactly OpenAI-ES's at σ_ES = σ/√n. The step (surrogate included) runs on the step's whole data in the model's
/// forward-only mode; the optimizer steps at the step's rate after its clip.
/// </summary>
public sealed class GuidedEsRule : ILearningRule
{
    private readonly ParameterVector _theta;
    private readonly AntitheticEstimator _estimator;
    private readonly ISurrogateGradient _surrogate;
    private readonly IOptimizer _optimizer;
    private readonly GuidedEsOptions _options;
    private readonly Queue<Tensor> _history = new();
    private readonly ILossModel _model;

    private const string HistoryKey = "surrogate_history/";

    public GuidedEsRule(ILossModel model, ISurrogateGradient surrogate, IOptimizer optimizer, GuidedEsOptions options)
    {
        options.Validate();
        _model = model;
        _theta = new ParameterVector(model.TrainableParameters);
        _estimator = new AntitheticEstimator(model, _theta, options.PopulationChunkPairs);
        _surrogate = surrogate;
        _optimizer = optimizer;
        _options = options;
    }

    public string Name => "guided-es";
    public RuleCounters Counters { get; } = new();
    public string SurrogateName => _surrogate.Name;

    /// <summary>The remembered surrogate gradients, oldest first (checkpointed by the host so a resume guides the same way).</summary>
    public IReadOnlyList<Tensor> History => _history.ToList();

    /// <summary>Replaces the remembered surrogates with copies of <paramref name="history"/> (oldest first).</summary>
    public void LoadHistory(IEnumerable<Tensor> history)
    {
        foreach (var t in _history) t.Dispose();
        _history.Clear();
        foreach (var t in history) _history.Enqueue(t.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>The history as checkpoint tensors, oldest first, so a resumed run guides the same way.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>();
        int i = 0;
        foreach (var t in _history) state[HistoryKey + i++.ToString(System.Globalization.CultureInfo.InvariantCulture)] = t;
        return state;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) =>
        LoadHistory(state.Where(kv => kv.Key.StartsWith(HistoryKey, StringComparison.Ordinal))
            .OrderBy(kv => int.Parse(kv.Key[HistoryKey.Length..], System.Globalization.CultureInfo.InvariantCulture)).Select(kv => kv.Value));

    public RuleStepResult Step(RuleStep ruleStep)
    {
        using var scope = NewDisposeScope();
        using var forwardOnly = _model.ForwardOnly();
        long step = ruleStep.Index;
        var batch = ruleStep.Whole();
        var s = _surrogate.Compute(batch, step);
        Remember(s.Flat);
        var u = GuidingBasis();

        double n = _theta.Count, k = u?.shape[1] ?? 1;
        double a = _options.Sigma * Math.Sqrt(_options.Alpha / n);
        double c = _options.Sigma * Math.Sqrt((1 - _options.Alpha) / k);
        void Perturb(int pair, Tensor into)
        {
            using var gen = MemberNoise.GeneratorFor(_options.Seed, step, pair);
            into.normal_(0.0, 1.0, gen).mul_(a);
            if (u is null) return;
            using var zk = randn(u.shape[1], dtype: u.dtype, generator: gen);
            using var inSubspace = u.mv(zk);
            into.add_(inSubspace, c);
        }

        var (plus, minus) = _estimator.Evaluate(batch, _options.Pairs, Perturb);
        double scale = _options.Beta / (2.0 * _options.Sigma * _options.Sigma * _options.Pairs);
        var coef = plus.Zip(minus, (p, m) => (p - m) * scale).ToArray();
        var g = _estimator.Combine(coef, Perturb);
        _theta.SetGradients(g);
        double? norm = Optimizers.ClipAndStep(_optimizer, ruleStep.LearningRate, ruleStep.ClipNorm);
        _theta.ClearGradients();
        double loss = s.Loss ?? (plus.Sum() + minus.Sum()) / (2.0 * _options.Pairs);
        int micro = ruleStep.MicroBatches;
        return Counters.Record(new RuleStepResult(loss, (2L * _options.Pairs + s.ForwardPasses) * micro, s.BackwardPasses * micro, norm));
    }

    /// <summary>FIFO of the k most recent non-zero surrogates (a zero vector has no direction to guide by).</summary>
    private void Remember(Tensor surrogate)
    {
        using var _ = no_grad();
        if (surrogate.norm().ToDouble() == 0 || !double.IsFinite(surrogate.norm().ToDouble())) return;
        _history.Enqueue(surrogate.detach().clone().DetachFromDisposeScope());
        while (_history.Count > _options.SubspaceDim) _history.Dequeue().Dispose();
    }

    /// <summary>U: orthonormal basis of span(history) via reduced QR, [n, k]; null before any usable surrogate.</summary>
    private Tensor? GuidingBasis()
    {
        if (_history.Count == 0 || _options.Alpha == 1) return null;
        using var _ = no_grad();
        using var g = stack(_history.ToList(), 1);          // [n, k] copy, freed as soon as Q exists
        var (q, r) = linalg.qr(g, linalg.QRMode.Reduced);
        r.Dispose();
        return q;
    }

    public void Dispose()
    {
        foreach (var t in _history) t.Dispose();
        _history.Clear();
        _surrogate.Dispose();
    }
}
