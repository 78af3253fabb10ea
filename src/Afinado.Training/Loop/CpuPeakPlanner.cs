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
        if (c.Rule == LearningRule.GuidedEs && c.Surrogate != "dfa") return null;
        return Afinado.Planner.Fit.Planner.Create(request.Architecture, JobFor(c), [Device.Cpu()], suggestFixes: false).Ledger.TotalBytes;
    }

    /// <summary>The plan's fixes for a CPU with <paramref name="availableBytes"/> free, those that fit and that
    /// the trainer can apply, in its own config keys (the plan speaks of a job's <c>checkpointing full</c>, the trainer of
    /// <c>gradient_checkpointing</c>; 8-bit optimizers and QLoRA have no CPU trainer and are left out).</summary>
    public IReadOnlyList<ParameterChange> FixesWithin(PeakPlanRequest request, long availableBytes)
    {
        var plan = Afinado.Planner.Fit.Planner.Create(request.Architecture, JobFor(request.Config), [Device.Cpu(availableBytes)]);
        return plan.Fixes.Where(f => f.Fits).Select(f => TrainChange(f.Change)).OfType<ParameterChange>().Distinct().ToList();
    }

    /// <summary>A plan fix in the trainer's config keys, or null when the trainer has no such option.</summary>
    internal static ParameterChange? TrainChange(ParameterChange change)
    {
        var result = new List<Setting>();
        foreach (var s in change.Settings)
        {
            Setting? setting = (s.Parameter, s.Value) switch
            {
                var (p, v) when p == JobParameters.Checkpointing && v == "full" => new Setting(TrainParameters.GradientCheckpointing),
                var (p, v) when p == JobParameters.Method && v is "lora" or "freeze" => new Setting(TrainParameters.Method, v),
                var (p, v) when p == JobParameters.Attention && v == "sdpa" => new Setting(TrainParameters.Attention, v),
                var (p, v) when p == JobParameters.Batch => new Setting(TrainParameters.BatchSize, v),
                var (p, v) when p == JobParameters.GradAccumulation => new Setting(TrainParameters.GradientAccumulation, v),
                var (p, v) when p == JobParameters.Seq => new Setting(TrainParameters.SequenceLength, v),
                _ => null,
            };
            if (setting is not { } known) return null;
            result.Add(known);
        }
        return result.Count > 0 ? new ParameterChange(result) : null;
    }

    /// <summary>The planner job that describes this training run: the same method, rule, optimizer and attention values.</summary>
    public static Job JobFor(TrainConfig c)
    {
        var method = c.Method;
        return new Job
        {
            Task = JobTask.Train,
            Method = method,
            Rule = TrainVocabulary.PlannerRule(c.Rule, c.Optimizer),
            FreezePatterns = c.Freeze,
            Lora = method.UsesAdapters() ? new LoraConfig { Rank = c.LoraRank, Alpha = c.LoraAlpha, Dropout = c.LoraDropout, Targets = c.LoraTargets } : null,
            Precision = Precision.Fp32,
            Optimizer = c.Optimizer,
            Batch = c.BatchSize,
            Seq = c.SequenceLength,
            GradAccumulation = c.GradientAccumulation,
            Checkpointing = c.GradientCheckpointing ? Checkpointing.Full : Checkpointing.None,
            Attention = c.Attention,
        };
    }
}
