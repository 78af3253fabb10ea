namespace Afinado.Training.LearningRules.Bench;

/// <summary>
/// The parameters of the Fashion-MNIST learning-rule bench.
/// </summary>
public static class BenchParameters
{
    public static readonly InputParameter Runs = new("runs");
}
