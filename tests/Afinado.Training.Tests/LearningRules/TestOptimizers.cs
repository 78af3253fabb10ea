using Afinado.Training.LearningRules;
using Afinado.Training.Optim;

namespace Afinado.Training.Tests.LearningRules;

/// <summary>The engine's optimizers over a model's trainable parameters, as the rule tests use them.</summary>
internal static class TestOptimizers
{
    public static IOptimizer Sgd(ILossModel model) => new Sgd(Optimizers.ByPosition(model.TrainableParameters), momentum: 0, weightDecay: 0);

    public static IOptimizer Adam(ILossModel model) => Optimizers.Adam(Optimizers.ByPosition(model.TrainableParameters));
}
