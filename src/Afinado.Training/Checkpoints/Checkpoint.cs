using static TorchSharp.torch;

namespace Afinado.Training.Checkpoints;

/// <summary>A checkpoint read from disk that passed every check; owns its (CPU) tensors until disposed.</summary>
public sealed class Checkpoint(string dir, CheckpointState state, Dictionary<string, Tensor> trainable, Dictionary<string, Tensor> optimizerState) : IDisposable
{
    public string Dir { get; } = dir;
    public string Name => Path.GetFileName(Dir);
    public CheckpointState State { get; } = state;
    public IReadOnlyDictionary<string, Tensor> Trainable { get; } = trainable;
    public IReadOnlyDictionary<string, Tensor> OptimizerState { get; } = optimizerState;

    public void Dispose()
    {
        foreach (var t in Trainable.Values.Concat(OptimizerState.Values)) t.Dispose();
    }
}
