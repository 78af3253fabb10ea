using Afinado.Training.LearningRules;
using static TorchSharp.torch;

namespace Afinado.Training.Data;

/// <summary>
/// Batches made by a host's own seeded walk (shuffled epochs, random windows, the bench's permutations with flips): the
/// next batch depends on the ones before, not on the step alone, so the loop must ask for the steps in order (it does;
/// these hosts never resume) and a step asked out of order is refused. No validation batches: these hosts score their
/// models themselves.
/// </summary>
internal sealed class WalkBatches(string description, Func<Batch> next) : IBatchSource
{
    private long _next;

    public string Description => description;
    public IReadOnlyList<string> Files => [];
    public long PositionsPerSample => 1;

    public (Tensor Input, Tensor Target) TrainBatch(long seed, long step, int micro, int batchSize)
    {
        if (step != _next || micro != 0) throw new InvalidOperationException($"{description} is a walk: step {_next} comes next, not {step}/{micro}");
        _next++;
        var b = next();
        return (b.Inputs, b.Targets);
    }

    public IEnumerable<(Tensor Input, Tensor Target)> ValidationBatches(int batchSize, int maxBatches) => [];
}
