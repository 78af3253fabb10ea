using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// What the GPU really holds for a job: the step's allocation events (<see cref="StepTraces"/>) replayed through the
/// caching allocator (<see cref="CachingAllocator"/>), plus the runtime outside it (<see cref="RuntimeStack"/>).
/// </summary>
public static class ReservedMemory
{
    /// <summary>
    /// Why a GPU job's step is not replayed (null: it is). The traces follow transformers' dense decoder and the
    /// backprop loop of bench/gpu/measure.py; jobs whose step allocates differently get the assumed reserve instead.
    /// </summary>
    public static string? NotReplayed(ModelProfile profile, Job job)
    {
        var a = profile.Architecture;
        if (a.IsMoE) return "mixture-of-experts layers are not traced";
        if (!job.IsTraining) return null;
        return job.Rule != LearningRule.Backprop ? $"the {job.Rule.Name()} rule's step is not traced"
            : job.OptimizerInBackward ? "optimizer-in-backward steps are not traced"
            : job.LossChunks > 1 ? "chunked cross-entropy is not traced"
            : job.Compile ? "compiled (fused) steps are not traced"
            : job.OffloadActivations ? "activation offloading is not traced"
            : job.LegacyLoss || job.KeepOutput ? "the legacy loss / kept output are not traced"
            : null;
    }

    /// <summary>Replays the job with the stack's workspaces allocated first, as PyTorch does at the first matmul.</summary>
    public static ReplayResult Replay(ModelProfile profile, Job job, RuntimeStack stack, AllocatorSettings? settings = null, long? capacityBytes = null)
    {
        var trace = StepTraces.For(profile, job, stack.WorkspaceAllocations);
        return AllocatorReplay.Run(trace, settings, capacityBytes);
    }
}
