using Afinado.Training.Optim;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>OpenAI-ES settings. σ is the perturbation scale of ε = σ·z, z ~ N(0, I).</summary>
public sealed record EsOptions
{
    public double Sigma { get; init; } = 0.02;
    /// <summary>Antithetic pairs per step (population = 2·Pairs).</summary>
    public int Pairs { get; init; } = 50;
    public FitnessShaping Shaping { get; init; } = FitnessShaping.CenteredRank;
    /// <summary>Pairs evaluated per batched call when the model supports it; 0 = one member at a time, in place.</summary>
    public int PopulationChunkPairs { get; init; } = 16;
    public ulong Seed { get; init; }
    /// <summary>
    /// 0 = dense isotropic Gaussian noise (OpenAI-ES). r ≥ 1 = low-rank noise (EGGROLL): each weight matrix is perturbed by
    /// σ·A·Bᵀ/√r, which keeps the estimate's expectation but lets a model that supports it evaluate a far larger population
    /// for the same compute (<see cref="LowRankNoise"/>). Memory: C·r·(in + out) factors per chunk instead of 2C·D rows.
    /// </summary>
    public int NoiseRank { get; init; }

    internal void Validate()
    {
        if (!(Sigma > 0)) throw new ArgumentOutOfRangeException(nameof(Sigma), "σ must be > 0");
        if (Pairs < 1) throw new ArgumentOutOfRangeException(nameof(Pairs), "need at least one antithetic pair");
        if (NoiseRank < 0) throw new ArgumentOutOfRangeException(nameof(NoiseRank), "noise rank must be ≥ 0 (0 = dense noise)");
    }
}

/// <summary>
/// OpenAI-ES (Salimans et al. 2017): mirrored sampling, optional centered-rank fitness shaping, noise regenerated from
/// per-pair seeds (seed, step index, pair). The estimate g = 1/(2Pσ²)·Σ_i (s⁺_i − s⁻_i)·ε_i (with s = shaped losses) is
/// written into .grad and the given optimizer (SGD, Adam, …) takes the step at the step's rate after the step's clip, so
/// weight decay and momentum behave as with backprop. Without shaping, g is the unbiased gradient of the Gaussian-smoothed
/// loss. Without an optimizer the update is direct (MeZO-style): θ −= lr·c_i·ε_i pair by pair as each ε_i is redrawn, so
/// no estimate, .grad or optimizer state is ever allocated (and no clip or weight decay applies).
/// Members are scored on the step's whole data (its micro-batches joined) in the model's forward-only mode.
/// </summary>
public sealed class EsRule : ILearningRule
{
    private readonly ParameterVector _theta;
    private readonly AntitheticEstimator _estimator;
    private readonly ILossModel _model;
    private readonly IOptimizer? _optimizer;
    private readonly EsOptions _options;
    private readonly LowRankNoise? _lowRank;

    /// <param name="optimizer">Steps on the estimate written into .grad; null = direct in-place SGD at the step's learning
    /// rate (memory: weights + one perturbation buffer + forward activations).</param>
    public EsRule(ILossModel model, IOptimizer? optimizer, EsOptions options)
    {
        options.Validate();
        _model = model;
        _theta = new ParameterVector(model.TrainableParameters);
        _estimator = new AntitheticEstimator(model, _theta, options.PopulationChunkPairs);
        _optimizer = optimizer;
        _options = options;
        _lowRank = options.NoiseRank > 0 ? new LowRankNoise(model.TrainableParameters, options.NoiseRank) : null;
    }

    public string Name => "es";
    public RuleCounters Counters { get; } = new();
    public long ParameterCount => _theta.Count;

    public RuleStepResult Step(RuleStep ruleStep)
    {
        using var scope = NewDisposeScope();
        using var forwardOnly = _model.ForwardOnly();
        long step = ruleStep.Index;
        var batch = ruleStep.Whole();
        Generator GeneratorFor(int pair) => MemberNoise.GeneratorFor(_options.Seed, step, pair);
        void Perturb(int pair, Tensor into)
        {
            using var gen = GeneratorFor(pair);
            if (_lowRank is null) into.normal_(0.0, _options.Sigma, gen);
            else _lowRank.WriteDense(gen, _options.Sigma, into);
        }

        var (plus, minus) = _lowRank is not null && _estimator.BatchedLowRank
            ? _estimator.EvaluateLowRank(batch, _options.Pairs, GeneratorFor, _lowRank, _options.Sigma)
            : _estimator.Evaluate(batch, _options.Pairs, Perturb);
        var (sp, sm) = FitnessShapingMath.Apply(_options.Shaping, plus, minus);
        double scale = 1.0 / (2.0 * _options.Pairs * _options.Sigma * _options.Sigma);
        var coef = sp.Zip(sm, (a, b) => (a - b) * scale).ToArray();
        double? norm = null;
        if (_optimizer is null)
        {
            _estimator.ApplyInPlace(coef, -ruleStep.LearningRate, Perturb);
        }
        else
        {
            var g = _lowRank is null ? _estimator.Combine(coef, Perturb) : _estimator.CombineLowRank(coef, GeneratorFor, _lowRank, _options.Sigma);
            _theta.SetGradients(g);
            norm = Optimizers.ClipAndStep(_optimizer, ruleStep.LearningRate, ruleStep.ClipNorm);
            _theta.ClearGradients();
        }
        double loss = (plus.Sum() + minus.Sum()) / (2.0 * _options.Pairs);
        return Counters.Record(new RuleStepResult(loss, 2L * _options.Pairs * ruleStep.MicroBatches, 0, norm));
    }

    public void Dispose() { }
}
