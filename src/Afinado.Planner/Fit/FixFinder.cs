using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Fit;

/// <summary>
/// Changes that would make a job fit, each re-planned through the same ledger. Ranked: the ones that fit come first, in
/// order of how little they change training (SDPA, checkpointing, smaller micro-batch with accumulation, 8-bit optimizer,
/// LoRA, QLoRA); then, if none fits alone, the same changes applied cumulatively; the rest follow by total bytes.
/// </summary>
internal static class FixFinder
{
    public static IReadOnlyList<FitFix> Find(ModelArchitecture arch, ModelProfile profile, Job job, Device device, DeviceKind kind)
    {
        var singles = new List<(string Change, Job Job)>();
        if (job.Attention == AttentionKernel.Eager) singles.Add(("--attention sdpa", job with { Attention = AttentionKernel.Sdpa }));
        if (job.IsTraining)
        {
            // Rules other than backprop keep no graph across blocks (nothing to checkpoint) and run a step's micro-batches as
            // one batch (accumulation saves nothing).
            bool backprop = job.Rule == LearningRule.Backprop;
            if (backprop && job.Checkpointing == Checkpointing.None) singles.Add(("--checkpointing full", job with { Checkpointing = Checkpointing.Full }));
            if (backprop && job.Batch > 1) singles.Add(MicroBatch(profile, job, device, kind));
            if (job.Optimizer == OptimizerKind.AdamW && !job.Method.UsesAdapters() && job.Rule != LearningRule.EsDirect) singles.Add(("--optimizer adamw-8bit", job with { Optimizer = OptimizerKind.AdamW8bit }));
            if (!job.Method.UsesAdapters() && kind == DeviceKind.Gpu)
                singles.Add(("--method lora", job with { Method = TrainingMethod.Lora, FreezePatterns = [], WeightsDtype = null }));
            if (job.Method != TrainingMethod.QLora && kind == DeviceKind.Gpu)
                singles.Add(("--method qlora", job with { Method = TrainingMethod.QLora, FreezePatterns = [], WeightsDtype = null }));
        }
        else
        {
            if (job.ResolvedKvDtype.Bits() > 8) singles.Add(("--kv-dtype fp8", job with { KvDtype = DType.Fp8 }));
            if (job.ResolvedWeightsDtype.Bits() > 8) singles.Add(("--weights-dtype int8", job with { WeightsDtype = DType.Int8 }));
            if (job.ResolvedWeightsDtype.Bits() > 4.5) singles.Add(("--weights-dtype nf4", job with { WeightsDtype = DType.Nf4 }));
        }

        var results = singles.Select((s, i) => (Order: i, Fix: Evaluate(arch, profile, s.Change, s.Job, device, kind))).ToList();
        if (!results.Any(r => r.Fix.Fits) && singles.Count > 1)
        {
            // Cumulative: apply the changes in rank order until the job fits.
            var current = job;
            var names = new List<string>();
            foreach (var (change, changed) in singles)
            {
                current = Merge(current, job, changed);
                names.Add(change);
                var fix = Evaluate(arch, profile, string.Join(" ", names), current, device, kind);
                results.Add((100 + names.Count, fix));
                if (fix.Fits) break;
            }
        }
        return results
            .DistinctBy(r => r.Fix.Change)
            .OrderByDescending(r => r.Fix.Fits)
            .ThenBy(r => r.Fix.Fits ? r.Order : r.Fix.TotalBytes)
            .Select(r => r.Fix)
            .ToList();
    }

    private static (string, Job) MicroBatch(ModelProfile profile, Job job, Device device, DeviceKind kind)
    {
        int batch = job.Batch, accum = job.GradAccumulation;
        while (batch > 1)
        {
            batch = (batch + 1) / 2;
            accum *= 2;
            var j = job with { Batch = batch, GradAccumulation = accum };
            if (j.OptimizerInBackward) j = j with { OptimizerInBackward = false };
            if (FitCheck.Fits(profile, j, device, kind)) return ($"--batch {batch} --grad-accum {accum}", j);
        }
        var one = job with { Batch = 1, GradAccumulation = job.GradAccumulation * job.Batch, OptimizerInBackward = false };
        return ($"--batch 1 --grad-accum {one.GradAccumulation}", one);
    }

    /// <summary>Applies the fields <paramref name="changed"/> altered relative to <paramref name="original"/> onto <paramref name="current"/>.</summary>
    private static Job Merge(Job current, Job original, Job changed) => current with
    {
        Attention = changed.Attention != original.Attention ? changed.Attention : current.Attention,
        Checkpointing = changed.Checkpointing != original.Checkpointing ? changed.Checkpointing : current.Checkpointing,
        Batch = changed.Batch != original.Batch ? changed.Batch : current.Batch,
        GradAccumulation = changed.GradAccumulation != original.GradAccumulation ? changed.GradAccumulation : current.GradAccumulation,
        OptimizerInBackward = changed.OptimizerInBackward != original.OptimizerInBackward ? changed.OptimizerInBackward : current.OptimizerInBackward,
        Optimizer = changed.Optimizer != original.Optimizer ? changed.Optimizer : current.Optimizer,
        Method = changed.Method != original.Method ? changed.Method : current.Method,
        FreezePatterns = changed.Method != original.Method ? changed.FreezePatterns : current.FreezePatterns,
        WeightsDtype = changed.WeightsDtype != original.WeightsDtype || changed.Method != original.Method ? changed.WeightsDtype : current.WeightsDtype,
        KvDtype = changed.KvDtype != original.KvDtype ? changed.KvDtype : current.KvDtype,
    };

    private static FitFix Evaluate(ModelArchitecture arch, ModelProfile profile, string change, Job job, Device device, DeviceKind kind)
    {
        // LoRA and QLoRA with the same adapters train the same tensors, so they share one profile.
        bool sameSelection = !job.IsTraining || job.Method == profile.Selection.Method
            || (job.Method.UsesAdapters() && profile.Selection.Method.UsesAdapters() && (job.Lora ?? new LoraConfig()) == profile.Selection.Lora);
        var p = sameSelection ? profile : ModelProfile.Create(Planner.SelectionFor(arch, job));
        var ledger = LedgerBuilder.Build(p, job, kind, explain: false);
        return new FitFix(change, job, ledger.PeakBytes, ledger.TotalBytes, FitCheck.Verdict(device, ledger, p, job).Fits);
    }
}
