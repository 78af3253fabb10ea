using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Afinado.Training.Recipes;

/// <summary>
/// The small classifier (784 → hidden → classes) of <c>afinado eval</c>'s class-split recipe: base training, the
/// finetune and the last-layer alternative. Its layers are named fc1/fc2 so "last layer only" means fc2.
/// </summary>
public static class MlpClassifier
{
    public const string LastLayerPrefix = "fc2.";

    public static TorchSharp.Modules.Sequential Create(int features, int hidden, int classes) =>
        Sequential(("fc1", Linear(features, hidden)), ("relu", ReLU()), ("fc2", Linear(hidden, classes)));

    /// <summary>Freezes everything except the last layer; returns the number of trainable parameters left.</summary>
    public static long FreezeAllButLastLayer(Module model) => ModuleFreezing.TrainOnly(model, LastLayerPrefix);

    public static long ParameterCount(Module model) => model.parameters().Sum(p => p.numel());
    public static long TrainableCount(Module model) => model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
}
