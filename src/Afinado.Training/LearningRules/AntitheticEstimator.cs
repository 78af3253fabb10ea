using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>Writes the perturbation ε_i of pair <c>pair</c> into a [D] buffer, drawing only from that pair's own seed.</summary>
public delegate void PerturbationWriter(int pair, Tensor into);

/// <summary>
/// The part OpenAI-ES and Guided ES share: evaluate f(θ+ε_i) and f(θ−ε_i) for P antithetic pairs, then form
/// Σ_i c_i·ε_i by regenerating each ε_i from its seed. Two evaluation modes:
/// <list type="bullet">
/// <item>in place (any <see cref="ILossModel"/>): θ += ε, f⁺, θ −= 2ε, f⁻, θ += ε — memory is weights + one perturbation buffer;</item>
/// <item>batched (<see cref="IPopulationLossModel"/>): up to <c>chunkPairs</c> pairs stacked as [2c, D] rows and evaluated
/// in one call — memory is weights + 2c parameter vectors, traded for fewer, larger matrix products.</item>
/// </list>
/// </summary>
public sealed class AntitheticEstimator
{
    private readonly ILossModel _model;
    private readonly ParameterVector _theta;
    private readonly int _chunkPairs;

    /// <param name="chunkPairs">Pairs per batched call; 0 forces in-place evaluation even if the model can batch.</param>
    public AntitheticEstimator(ILossModel model, ParameterVector theta, int chunkPairs)
    {
        if (chunkPairs < 0) throw new ArgumentOutOfRangeException(nameof(chunkPairs), "must be ≥ 0");
        _model = model;
        _theta = theta;
        _chunkPairs = chunkPairs;
    }

    public bool Batched => _chunkPairs > 0 && _model is IPopulationLossModel;

    /// <summary>True when low-rank noise can be evaluated as one population call per chunk (<see cref="ILowRankPopulationLossModel"/>).</summary>
    public bool BatchedLowRank => _chunkPairs > 0 && _model is ILowRankPopulationLossModel;

    /// <summary>Losses at θ+ε_i (Plus) and θ−ε_i (Minus) for i = 0..pairs−1. θ is unchanged afterwards.</summary>
    public (double[] Plus, double[] Minus) Evaluate(Batch batch, int pairs, PerturbationWriter perturb)
    {
        var plus = new double[pairs];
        var minus = new double[pairs];
        using var noGrad = no_grad();
        if (Batched) EvaluateBatched(batch, pairs, perturb, plus, minus);
        else EvaluateInPlace(batch, pairs, perturb, plus, minus);
        return (plus, minus);
    }

    private void EvaluateInPlace(Batch batch, int pairs, PerturbationWriter perturb, double[] plus, double[] minus)
    {
        using var eps = empty(_theta.Count, dtype: _theta.DType);
        for (int i = 0; i < pairs; i++)
        {
            using var scope = NewDisposeScope();
            perturb(i, eps);
            _theta.AddInPlace(eps, 1.0);
            plus[i] = LossOnce(batch);
            _theta.AddInPlace(eps, -2.0);
            minus[i] = LossOnce(batch);
            _theta.AddInPlace(eps, 1.0);
        }
    }

    /// <summary>One forward whose intermediates are freed before the next one starts (only one forward is ever live).</summary>
    private double LossOnce(Batch batch)
    {
        using var scope = NewDisposeScope();
        return _model.Loss(batch).ToDouble();
    }

    private void EvaluateBatched(Batch batch, int pairs, PerturbationWriter perturb, double[] plus, double[] minus)
    {
        var model = (IPopulationLossModel)_model;
        using var theta = _theta.Gather();
        using var eps = empty(_theta.Count, dtype: _theta.DType);
        for (int start = 0; start < pairs; start += _chunkPairs)
        {
            using var scope = NewDisposeScope();
            int c = Math.Min(_chunkPairs, pairs - start);
            var rows = empty(2 * c, _theta.Count, dtype: _theta.DType);
            for (int j = 0; j < c; j++)
            {
                perturb(start + j, eps);
                rows[2 * j].copy_(theta).add_(eps);
                rows[2 * j + 1].copy_(theta).sub_(eps);
            }
            var losses = model.PopulationLoss(rows, batch).to(ScalarType.Float64).data<double>().ToArray();
            for (int j = 0; j < c; j++)
            {
                plus[start + j] = losses[2 * j];
                minus[start + j] = losses[2 * j + 1];
            }
        }
    }

    /// <summary>
    /// Losses at θ±ε_i for low-rank noise, <see cref="_chunkPairs"/> pairs per <see cref="ILowRankPopulationLossModel"/> call;
    /// the factors are drawn from each pair's own generator (<paramref name="generatorFor"/>), exactly as the dense path would.
    /// </summary>
    public (double[] Plus, double[] Minus) EvaluateLowRank(Batch batch, int pairs, Func<int, Generator> generatorFor, LowRankNoise noise, double sigma)
    {
        if (!BatchedLowRank) throw new InvalidOperationException("the model cannot evaluate a low-rank population; use Evaluate with a dense writer");
        var model = (ILowRankPopulationLossModel)_model;
        var plus = new double[pairs];
        var minus = new double[pairs];
        using var noGrad = no_grad();
        for (int start = 0; start < pairs; start += _chunkPairs)
        {
            using var scope = NewDisposeScope();
            int c = Math.Min(_chunkPairs, pairs - start);
            var chunk = DrawChunk(start, c, generatorFor, noise, sigma);
            var losses = model.LowRankPopulationLoss(chunk, batch).to(ScalarType.Float64).data<double>().ToArray();
            Array.Copy(losses, 0, plus, start, c);
            Array.Copy(losses, c, minus, start, c);
        }
        return (plus, minus);
    }

    /// <summary>Σ_i coefficients[i]·ε_i for low-rank noise: the factors are regenerated chunk by chunk and combined by matmul.</summary>
    public Tensor CombineLowRank(IReadOnlyList<double> coefficients, Func<int, Generator> generatorFor, LowRankNoise noise, double sigma)
    {
        using var noGrad = no_grad();
        var sum = zeros(_theta.Count, dtype: _theta.DType);
        int chunkPairs = Math.Max(1, _chunkPairs);
        for (int start = 0; start < coefficients.Count; start += chunkPairs)
        {
            using var scope = NewDisposeScope();
            int c = Math.Min(chunkPairs, coefficients.Count - start);
            var chunk = DrawChunk(start, c, generatorFor, noise, sigma);
            var coef = tensor(coefficients.Skip(start).Take(c).ToArray(), dtype: _theta.DType);
            noise.AddCombination(chunk, coef, sum);
        }
        return sum;
    }

    private IReadOnlyList<StackedPerturbation> DrawChunk(int start, int count, Func<int, Generator> generatorFor, LowRankNoise noise, double sigma)
    {
        var generators = Enumerable.Range(start, count).Select(generatorFor).ToList();
        try { return noise.Stack(generators, sigma, _theta.DType); }
        finally { foreach (var g in generators) g.Dispose(); }
    }

    /// <summary>θ += scale·Σ_i coefficients[i]·ε_i, one regenerated ε_i at a time, without an estimate buffer.</summary>
    public void ApplyInPlace(IReadOnlyList<double> coefficients, double scale, PerturbationWriter perturb)
    {
        using var noGrad = no_grad();
        using var eps = empty(_theta.Count, dtype: _theta.DType);
        for (int i = 0; i < coefficients.Count; i++)
        {
            if (coefficients[i] == 0) continue;
            using var scope = NewDisposeScope();
            perturb(i, eps);
            _theta.AddInPlace(eps, scale * coefficients[i]);
        }
    }

    /// <summary>Σ_i coefficients[i]·ε_i as a new [D] tensor, regenerating each ε_i (nothing was stored).</summary>
    public Tensor Combine(IReadOnlyList<double> coefficients, PerturbationWriter perturb)
    {
        using var noGrad = no_grad();
        var sum = zeros(_theta.Count, dtype: _theta.DType);
        using var eps = empty(_theta.Count, dtype: _theta.DType);
        for (int i = 0; i < coefficients.Count; i++)
        {
            if (coefficients[i] == 0) continue;
            using var scope = NewDisposeScope();
            perturb(i, eps);
            sum.add_(eps, coefficients[i]);
        }
        return sum;
    }
}
