using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Training.Loop;

/// <summary>The planner's <c>--device cpu</c> prediction for a training run (fp32, no CUDA context, CPU attention kernel).</summary>
public sealed class CpuPeakPlanner : IPeakPlanner
{
    public long? PlanPeakBytes(PeakPlanRequest request)
    {
        var plan = Afinado.Planner.Fit.Planner.Create(request.Architecture, JobFor(request.Config), [Device.Cpu()], suggestFixes: false);
        return plan.Ledger.TotalBytes;
    }

    /// <summary>The planner job that describes this training run.</summary>
    public static Job JobFor(TrainConfig c)
    {
        var method = TrainingMethods.Parse(c.Method);
        return new Job
        {
            Task = JobTask.Train,
            Method = method,
            FreezePatterns = c.Freeze,
            Lora = method.UsesAdapters() ? new LoraConfig { Rank = c.LoraRank, Alpha = c.LoraAlpha, Dropout = c.LoraDropout, Targets = c.LoraTargets } : null,
            Precision = Precision.Fp32,
            Optimizer = c.Optimizer switch
            {
                "sgd" => OptimizerKind.Sgd,
                "momentum" => OptimizerKind.SgdMomentum,
                _ => OptimizerKind.AdamW,
            },
            Batch = c.BatchSize,
            Seq = c.SequenceLength,
            GradAccumulation = c.GradientAccumulation,
            Checkpointing = c.GradientCheckpointing ? Checkpointing.Full : Checkpointing.None,
            Attention = c.Attention == "eager" ? AttentionKernel.Eager : AttentionKernel.Sdpa,
        };
    }
}
