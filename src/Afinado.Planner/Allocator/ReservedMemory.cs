using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// What the GPU really holds for a job: the step's allocation events (<see cref="StepTraces"/>) replayed through the
/// caching allocator (<see cref="CachingAllocator"/>), plus the runtime outside it (<see cref="RuntimeStack"/>).
/// </summary>
public static class ReservedMemory
{
    /// <summary>Replays the job with the stack's workspaces allocated first, as PyTorch does at the first matmul.</summary>
    public static ReplayResult Replay(ModelProfile profile, Job job, RuntimeStack stack, AllocatorSettings? settings = null, long? capacityBytes = null)
    {
        var trace = StepTraces.For(profile, job, stack.WorkspaceAllocations);
        return AllocatorReplay.Run(trace, settings, capacityBytes);
    }
}
