using Afinado.Training.LearningRules;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Tests.LearningRules;

/// <summary>f(x) = ½·Σ h_i x_i² + c·x in float64, with a known gradient h⊙x + c. Batches are ignored.</summary>
internal sealed class QuadraticModel : IPopulationLossModel, IDisposable
{
    private readonly Tensor _h, _c;

    public QuadraticModel(int n, ulong seed = 7)
    {
        using var gen = new Generator(seed);
        _h = rand(new long[] { n }, dtype: ScalarType.Float64, generator: gen).add_(0.5);
        _c = randn(new long[] { n }, dtype: ScalarType.Float64, generator: gen);
        X = new Parameter(randn(new long[] { n }, dtype: ScalarType.Float64, generator: gen));
        TrainableParameters = new[] { X };
    }

    public Parameter X { get; }
    public IReadOnlyList<Parameter> TrainableParameters { get; }

    public Tensor Loss(Batch batch) => 0.5 * (_h * X * X).sum() + _c.dot(X);

    public Tensor PopulationLoss(Tensor thetas, Batch batch) =>
        0.5 * (thetas * thetas * _h).sum(dim: 1) + thetas.matmul(_c);

    public Tensor TrueGradient()
    {
        using var _ = no_grad();
        return _h * X + _c;
    }

    public void Dispose()
    {
        _h.Dispose();
        _c.Dispose();
        X.Dispose();
    }
}
