using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules.Toy;

/// <summary>
/// The Guided ES paper's toy problem (Maheswaranathan et al. 2019, Fig. 1b; brain-research notebook): least squares
/// f(x) = ½‖Ax − b‖²/m with A ∈ R^{m×n}, b ∈ R^m standard normal, x ∈ R^n starting at 0, in float64. The batch is ignored.
/// </summary>
public sealed class LeastSquaresToy : IPopulationLossModel, IDisposable
{
    private readonly Tensor _a, _b;

    public LeastSquaresToy(int n = 1000, int m = 2000, ulong seed = 0)
    {
        if (n < 1 || m < 1) throw new ArgumentOutOfRangeException(nameof(n), "n and m must be ≥ 1");
        N = n;
        M = m;
        using var gen = new Generator(seed);
        _a = randn(new long[] { m, n }, dtype: ScalarType.Float64, generator: gen).DetachFromDisposeScope();
        _b = randn(new long[] { m }, dtype: ScalarType.Float64, generator: gen).DetachFromDisposeScope();
        UnitBias = nn.functional.normalize(randn(new long[] { 1, n }, dtype: ScalarType.Float64, generator: gen), dim: 1).reshape(n).DetachFromDisposeScope();
        X = new Parameter(zeros(n, dtype: ScalarType.Float64));
        TrainableParameters = new[] { X };
    }

    public int N { get; }
    public int M { get; }
    public Parameter X { get; }
    /// <summary>b̂: the fixed random unit vector the biased surrogate adds, scaled by ‖∇f‖.</summary>
    public Tensor UnitBias { get; }
    public IReadOnlyList<Parameter> TrainableParameters { get; }

    public Tensor Loss(Batch batch)
    {
        var r = _a.mv(X) - _b;
        return 0.5 * r.dot(r) / M;
    }

    public Tensor PopulationLoss(Tensor thetas, Batch batch)
    {
        var r = thetas.matmul(_a.t()) - _b;
        return 0.5 * r.pow(2).sum(dim: 1) / M;
    }

    /// <summary>f at the current x, without autograd.</summary>
    public double LossNow()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return Loss(default).ToDouble();
    }

    /// <summary>f(x*) of the least-squares solution, so curves can be shown as f − f*.</summary>
    public double OptimalLoss()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var sol = linalg.lstsq(_a, _b.unsqueeze(1)).Solution.squeeze(1);
        var r = _a.mv(sol) - _b;
        return (0.5 * r.dot(r) / M).ToDouble();
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
        UnitBias.Dispose();
        X.Dispose();
    }
}
