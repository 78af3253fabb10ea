using static TorchSharp.torch;

namespace Afinado.Training.Data;

/// <summary>
/// Where a training loop gets its batches. Training batches are a pure function of (seed, step, micro-batch), so a
/// resumed run sees exactly the batches an uninterrupted one would. Inputs/targets feed <c>cross_entropy</c>:
/// logits [..., C] against class ids [...].
/// </summary>
public interface IBatchSource
{
    /// <summary>Short description for logs and manifests (e.g. <c>fortunes-es/byte/seq128</c>).</summary>
    string Description { get; }
    /// <summary>Data files this source read (hashed into the run manifest).</summary>
    IReadOnlyList<string> Files { get; }
    /// <summary>Number of predicted positions per sample (sequence length for text, 1 for images): for tokens/s.</summary>
    long PositionsPerSample { get; }
    (Tensor Input, Tensor Target) TrainBatch(long seed, long step, int micro, int batchSize);
    /// <summary>A fixed, ordered set of validation batches (the same every call).</summary>
    IEnumerable<(Tensor Input, Tensor Target)> ValidationBatches(int batchSize, int maxBatches);
}
