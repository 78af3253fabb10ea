using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Training.Loop;

/// <summary>The planner's <c>--device cpu</c> prediction for a training run (fp32, no CUDA context, CPU attention kernel).</summary>
public sealed class CpuPeakPlanner : IPeakPlanner
{
    /// <summary>The planner's rule mode predicts every rule; Guided ES only with the DFA surrogate it models (null otherwise).</summary>
    public long? PlanPeakBytes(PeakPlanRequest request)
    {
        var c = request.Config;
        if (c.Rule == "guided-es" && c.Surrogate != "dfa") return null;
        return Afinado.Planner.Fit.Planner.Create(request.Architecture, JobFor(c), [Device.Cpu()], suggestFixes: false).Ledger.TotalBytes;
    }

    /// <summary>The planner's rule for a training run: <c>--rule es --optimizer sgd</c> is the trainer's MeZO-style direct update.</summary>
    public static LearningRule RuleFor(TrainConfig c) => c.Rule switch
    {
        "es" when c.Optimizer == "sgd" => LearningRule.EsDirect,
        "es" => LearningRule.Es,
        "dfa" => LearningRule.Dfa,
        "guided-es" => LearningRule.GuidedEs,
        _ => LearningRule.Backprop,
    };

    /// <summary>The planner job that describes this training run.</summary>
    public static Job JobFor(TrainConfig c)
    {
        var method = TrainingMethods.Parse(c.Method);
        return new Job
        {
            Task = JobTask.Train,
            Method = method,
            Rule = RuleFor(c),
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
