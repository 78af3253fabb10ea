using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// A source of surrogate gradients for Guided ES: a direction correlated with the true gradient but biased, stale or
/// cheap. The flat vector has the layout of the rule's trainable parameters.
/// </summary>
public interface ISurrogateGradient : IDisposable
{
    string Name { get; }

    /// <summary>The surrogate at the current parameters for this batch and step. The caller owns the returned tensor.</summary>
    SurrogateGradient Compute(Batch batch, long step);
}

/// <summary>
/// A surrogate direction [D], the loss at θ if the source measured it on the way, and the passes it spent.
/// </summary>
public readonly record struct SurrogateGradient(Tensor Flat, double? Loss, long ForwardPasses, long BackwardPasses);
