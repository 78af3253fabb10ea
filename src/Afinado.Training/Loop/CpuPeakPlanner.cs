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
    /// <c>afinado train</c> can apply, in its own flags (the plan speaks <c>--checkpointing full</c>, train
    /// <c>--gradient-checkpointing</c>; 8-bit optimizers and QLoRA have no CPU trainer and are left out).</summary>
    public IReadOnlyList<string> FixesWithin(PeakPlanRequest request, long availableBytes)
    {
        var plan = Afinado.Planner.Fit.Planner.Create(request.Architecture, JobFor(request.Config), [Device.Cpu(availableBytes)]);
        return plan.Fixes.Where(f => f.Fits).Select(f => TrainFlags(f.Change)).OfType<string>().Distinct().ToList();
    }

    /// <summary>A plan fix in train's flags, or null when train has no such option.</summary>
    internal static string? TrainFlags(string change)
    {
        var words = change.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var result = new List<string>();
        for (int i = 0; i + 1 < words.Length; i += 2)
        {
            string? flag = (words[i], words[i + 1]) switch
            {
                ("--checkpointing", "full") => "--gradient-checkpointing",
                ("--method", "lora" or "freeze") or ("--attention", "sdpa") => $"{words[i]} {words[i + 1]}",
                ("--batch" or "--grad-accum" or "--seq", _) => $"{words[i]} {words[i + 1]}",
                _ => null,
            };
            if (flag is null) return null;
            result.Add(flag);
        }
        return words.Length % 2 == 0 && result.Count > 0 ? string.Join(' ', result) : null;
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
