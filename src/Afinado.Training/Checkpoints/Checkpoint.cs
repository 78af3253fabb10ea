using static TorchSharp.torch;

namespace Afinado.Training.Checkpoints;

/// <summary>
/// A checkpoint read from disk that passed every check (only <see cref="CheckpointStore.Read"/> makes one, so holding
/// one means it was verified); owns its CPU tensors until disposed.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    internal Checkpoint(string dir, CheckpointState state, Dictionary<string, Tensor> trainable, Dictionary<string, Tensor> optimizerState) =>
        (Dir, State, Trainable, OptimizerState) = (dir, state, trainable, optimizerState);

    public string Dir { get; }
    public string Name => Path.GetFileName(Dir);
    public CheckpointState State { get; }
    public IReadOnlyDictionary<string, Tensor> Trainable { get; }
    public IReadOnlyDictionary<string, Tensor> OptimizerState { get; }

    public void Dispose()
    {
        foreach (var t in Trainable.Values.Concat(OptimizerState.Values)) t.Dispose();
    }
}
