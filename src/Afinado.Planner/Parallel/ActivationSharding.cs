namespace Afinado.Planner.Parallel;

/// <summary>Applies tensor and sequence parallelism to a single-GPU activation list.</summary>
public static class ActivationSharding
{
    /// <summary>Bytes one TP rank keeps of <paramref name="entry"/>: tensor-region rows split t ways, sequence-region rows only with SP.</summary>
    public static long PerRank(ActivationEntry entry, int tensorParallel, bool sequenceParallel)
    {
        bool split = entry.Split == TensorParallelSplit.TensorRegion || sequenceParallel;
        return split ? CeilDiv(entry.Bytes, tensorParallel) : entry.Bytes;
    }

    public static long PerRank(IEnumerable<ActivationEntry> entries, int tensorParallel, bool sequenceParallel) =>
        entries.Sum(e => PerRank(e, tensorParallel, sequenceParallel));

    internal static long CeilDiv(long a, long b) => (a + b - 1) / b;
}
