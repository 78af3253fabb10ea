using static TorchSharp.torch.nn;

namespace Afinado.Training.Recipes;

/// <summary>The "last layer only" alternative of the recipes: only parameters under one name prefix keep learning.</summary>
internal static class ModuleFreezing
{
    /// <summary>Sets <c>requires_grad</c> on the parameters whose names start with <paramref name="prefix"/> and clears
    /// it on every other; returns the number of trainable parameters left.</summary>
    public static long TrainOnly(Module model, string prefix)
    {
        long trainable = 0;
        foreach (var (name, p) in model.named_parameters())
        {
            p.requires_grad = name.StartsWith(prefix, StringComparison.Ordinal);
            if (p.requires_grad) trainable += p.numel();
        }
        return trainable;
    }
}
