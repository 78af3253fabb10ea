using Afinado.Training.LearningRules;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Tests.LearningRules;

/// <summary>
/// f(x) = ½·Σ h_i x_i² + c·x in float64, with a known gradient h⊙x + c. Batches are ignored. x may be a vector or a
/// matrix (for noise that treats matrices differently); the flat layout is row-major either way.
/// </summary>
internal sealed class QuadraticModel : IPopulationLossModel, IDisposable
{
    private readonly Tensor _h, _c;

    public QuadraticModel(int n, ulong seed = 7) : this(new long[] { n }, seed) { }

    public QuadraticModel(long[] shape, ulong seed = 7)
    {
        using var gen = new Generator(seed);
        _h = rand(shape, dtype: ScalarType.Float64, generator: gen).add_(0.5);
        _c = randn(shape, dtype: ScalarType.Float64, generator: gen);
        X = new Parameter(randn(shape, dtype: ScalarType.Float64, generator: gen));
        TrainableParameters = new[] { X };
    }

    public Parameter X { get; }
    public IReadOnlyList<Parameter> TrainableParameters { get; }

    public Tensor Loss(Batch batch) => 0.5 * (_h * X * X).sum() + (_c * X).sum();

    public Tensor PopulationLoss(Tensor thetas, Batch batch) =>
        0.5 * (thetas * thetas * _h.reshape(-1)).sum(dim: 1) + thetas.matmul(_c.reshape(-1));

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
