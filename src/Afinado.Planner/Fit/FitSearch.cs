using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>
/// Largest batch or sequence that fits a device. Memory never shrinks as batch or sequence grow, so an exponential probe
/// followed by bisection finds the boundary in O(log n) ledger evaluations (formulas are not rendered).
/// Sequence search is capped at the model's max_position_embeddings; for inference it searches the context length
/// (prompt = context, the worst case of prefill).
/// </summary>
public static class FitSearch
{
    public static int Largest(ModelProfile profile, Job job, Device device, DeviceKind kind, string parameter)
    {
        bool batch = parameter switch
        {
            "batch" => true,
            "seq" => false,
            _ => throw new InputError(PlanParameters.Max, $"\"{parameter}\" cannot be searched", $"Use {PlanParameters.Max} batch or {PlanParameters.Max} seq."),
        };
        if (device.CapacityBytes <= 0)
            throw new InputError(PlanParameters.Max, $"{device.Name} has no capacity to search against", $"Give {PlanParameters.GpuMemory} SIZE (or a GPU) as the first device.");
        int cap = Limit(profile, batch);
        bool Fits(int v) => FitCheck.Fits(profile, With(job, batch, v), device, kind);
        int floor = Floor(profile.Architecture, job, batch);
        if (floor > cap || !Fits(floor)) return 0;
        int lo = floor, hi = floor * 2;
        while (hi <= cap && Fits(hi)) { lo = hi; hi = hi >= cap / 2 ? cap + 1 : hi * 2; }
        hi = Math.Min(hi, cap + 1);
        while (hi - lo > 1)
        {
            int mid = lo + (hi - lo) / 2;
            if (Fits(mid)) lo = mid; else hi = mid;
        }
        return lo;
    }

    /// <summary>The largest batch or sequence a search (and a memory curve) may reach: sequences stop at max_position_embeddings.</summary>
    public static int Limit(ModelProfile profile, bool batch) =>
        batch ? Job.MaxBatch : Math.Min(Job.MaxSeq, Math.Max(1, profile.Architecture.MaxPositionEmbeddings));


    /// <summary>The smallest batch or sequence the job can have: 1, or for a sequence with images, their tokens.</summary>
    public static int Floor(ModelArchitecture arch, Job job, bool batch) =>
        batch || job.Images == 0 || arch.Vision is not { } vision ? 1
        : (int)Math.Min(int.MaxValue, job.Images * vision.Image(job.ImageWidth, job.ImageHeight).SequenceTokens);

    public static Job With(Job job, bool batch, int value) =>
        batch ? job with { Batch = value }
        : job.IsTraining ? job with { Seq = value }
        : job with { Seq = Math.Min(job.Seq, value), Context = value };
}
