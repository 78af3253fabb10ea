using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// A small self-contained classifier (784 → hidden → classes) for the class-split experiment, so Evaluation can run
/// end to end before the training engine's models land. Its layers are named fc1/fc2 so "last layer only" means fc2.
/// </summary>
public static class MlpClassifier
{
    public const string LastLayerPrefix = "fc2.";

    public static TorchSharp.Modules.Sequential Create(int features, int hidden, int classes) =>
        Sequential(("fc1", Linear(features, hidden)), ("relu", ReLU()), ("fc2", Linear(hidden, classes)));

    /// <summary>Freezes everything except the last layer; returns the number of trainable parameters left.</summary>
    public static long FreezeAllButLastLayer(Module model)
    {
        long trainable = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            p.requires_grad = name.StartsWith(LastLayerPrefix, StringComparison.Ordinal);
            if (p.requires_grad) trainable += p.numel();
        }
        return trainable;
    }

    public static long ParameterCount(Module model) => model.parameters().Sum(p => p.numel());
    public static long TrainableCount(Module model) => model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
}
