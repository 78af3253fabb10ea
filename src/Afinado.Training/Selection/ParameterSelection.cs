namespace Afinado.Training.Selection;

/// <summary>
/// What the trainer needs from a trainable-parameter selection: which base tensors train (by Hugging Face name) and
/// which linear modules get a LoRA adapter with which hyper-parameters. Built from the planner's shared
/// <c>TrainableSelection</c>, so the planner charges gradients and optimizer state for exactly these tensors.
/// </summary>
public sealed record ParameterSelection(
    string Method,
    IReadOnlySet<string> TrainableBaseTensors,
    IReadOnlyList<string> AdaptedModules,
    int LoraRank = 0,
    double LoraAlpha = 0,
    double LoraDropout = 0)
{
    public bool UsesLora => AdaptedModules.Count > 0;
}
