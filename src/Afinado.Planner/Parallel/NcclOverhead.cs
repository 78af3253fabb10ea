namespace Afinado.Planner.Parallel;

/// <summary>
/// GPU memory NCCL takes per communicator (memory.md §5.2): 544 MB for a 2-GPU group and 688 MB for larger groups on
/// 4× A100 NVLink (NVIDIA/nccl #964). Real values grow with channels, algorithms and IB HCAs (#986, #818) and reach
/// ~1.6 GB with an all-reduce (#864): these are floors, read as MiB as nvidia-smi prints them.
/// Every group of 2 or more ranks is charged the larger figure: the 144 MiB between them is well inside NCCL's spread
/// across channels and algorithms, and one figure keeps the planner monotone (a third GPU never makes a job stop fitting
/// because its communicator was charged more than a pair's).
/// </summary>
public static class NcclOverhead
{
    public const long TwoRankBytes = 544L << 20;
    public const long LargerGroupBytes = 688L << 20;
    public const string Source = "NVIDIA/nccl #964 (4× A100 NVLink), memory.md §5.2";

    public static long PerCommunicator(int ranks) => ranks <= 1 ? 0 : LargerGroupBytes;

    /// <summary>The communicators one rank joins under <paramref name="layout"/>, with their sizes.</summary>
    public static IReadOnlyList<(string Group, int Ranks)> Communicators(ParallelLayout layout)
    {
        var groups = new List<(string, int)>();
        if (layout.Sharding == Sharding.FsdpHybrid)
        {
            groups.Add(("FSDP shard group (within node)", layout.ShardGroup));
            groups.Add(("FSDP replicate group (across nodes)", layout.DataParallel / layout.ShardGroup));
        }
        else if (layout.DataParallel > 1)
            groups.Add(("data-parallel group", layout.DataParallel));
        if (layout.TensorParallel > 1)
            groups.Add(("tensor-parallel group", layout.TensorParallel));
        // DeepSpeed AutoEP builds an EP group (token all-to-all) and an expert-data-parallel group (expert gradients).
        if (layout.ExpertParallel > 1)
        {
            groups.Add(("expert-parallel group (all-to-all)", layout.ExpertParallel));
            groups.Add(("expert data-parallel group", layout.DataParallel / layout.ExpertParallel));
        }
        return groups.Where(g => g.Item2 > 1).ToList();
    }
}
