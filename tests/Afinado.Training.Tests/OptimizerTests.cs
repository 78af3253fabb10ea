using Afinado.Training.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

public class OptimizerTests
{
    private static (List<(string, Parameter)> Ours, List<Parameter> Reference) Twins()
    {
        manual_seed(21);
        var w = randn(5, 3);
        var b = randn(5);
        return (new List<(string, Parameter)> { ("w", new Parameter(w.clone())), ("b", new Parameter(b.clone())) },
                new List<Parameter> { new(w.clone()), new(b.clone()) });
    }

    private static void Backward(IEnumerable<Parameter> ps, int step)
    {
        manual_seed(100 + step);
        using var x = randn(7, 3);
        var list = ps.ToList();
        using var loss = x.matmul(list[0].t()).add(list[1]).tanh().pow(2).sum();
        loss.backward();
    }

    /// <summary>Five steps of ours and of TorchSharp's libtorch-order optimizer from the same start on the same
    /// gradients: the parameters must be equal bit for bit, so replacing one by the other moves no measured figure.</summary>
    private static void AssertSameTrajectory(IOptimizer ours, TorchSharp.Modules.OptimizerHelper reference, double lr,
        List<(string, Parameter)> oursParams, List<Parameter> referenceParams)
    {
        for (int s = 0; s < 5; s++)
        {
            ours.ZeroGrad(); Backward(oursParams.Select(o => o.Item2), s); ours.Step(lr);
            reference.zero_grad(); Backward(referenceParams, s); reference.step();
        }
        for (int i = 0; i < 2; i++)
            Assert.True(oursParams[i].Item2.equal(referenceParams[i]).all().item<bool>(),
                $"parameter {i} differs: max {(oursParams[i].Item2 - referenceParams[i]).abs().max().ToDouble():E2}");
    }

    [Fact]
    public void AdamW_matches_libtorch_AdamW_bit_for_bit()
    {
        var (ours, reference) = Twins();
        using var a = new Afinado.Training.Optim.AdamW(ours, 0.9, 0.95, 1e-8, 0.1);
        AssertSameTrajectory(a, optim.AdamW(reference, lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1), 0.01, ours, reference);
    }

    [Fact]
    public void Adam_matches_libtorch_Adam_bit_for_bit()
    {
        var (ours, reference) = Twins();
        using var a = Optimizers.Adam(ours);
        AssertSameTrajectory(a, optim.Adam(reference, 0.003), 0.003, ours, reference);
    }

    [Fact]
    public void Momentum_sgd_matches_libtorch_SGD_bit_for_bit()
    {
        var (ours, reference) = Twins();
        using var a = new Sgd(ours, 0.9, 0.01);
        AssertSameTrajectory(a, optim.SGD(reference, 0.05, momentum: 0.9, weight_decay: 0.01), 0.05, ours, reference);
    }

    [Fact]
    public void Plain_sgd_matches_libtorch_SGD_bit_for_bit()
    {
        var (ours, reference) = Twins();
        using var a = new Sgd(ours, 0, 0);
        AssertSameTrajectory(a, optim.SGD(reference, 0.2), 0.2, ours, reference);
    }

    [Fact]
    public void Schedule_warms_up_then_decays_by_cosine_to_the_minimum()
    {
        var s = new LearningRateSchedule(1e-3, 1e-4, 10, 110);
        Assert.Equal(1e-3 / 11, s.At(0), 12);
        Assert.Equal(1e-3 * 10 / 11, s.At(9), 12);
        Assert.Equal(1e-3, s.At(10), 12);
        Assert.Equal(5.5e-4, s.At(60), 12);
        Assert.Equal(1e-4, s.At(110), 12);
    }
}
