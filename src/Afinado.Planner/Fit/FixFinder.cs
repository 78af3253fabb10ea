using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Fit;

/// <summary>
/// Changes that would make a job fit, each re-planned through the same ledger and judged by the same verdict
/// (<see cref="FitCheck"/>). Ranked: the ones that fit come first, in order of how little they change training (SDPA,
/// checkpointing, smaller micro-batch with accumulation, the optimizer step in backward, 8-bit optimizer, LoRA,
/// double-quantized NF4, QLoRA, and last
/// a shorter sequence, which changes the data); then, if none fits alone, the same changes applied cumulatively in that
/// order until the job fits (the shorter sequence recomputed for the changes before it); the rest follow by total bytes.
/// </summary>
internal static class FixFinder
{
    /// <param name="currentTotal">The job's own total when the caller already has its ledger (else it is built here).</param>
    public static IReadOnlyList<FitFix> Find(ModelArchitecture arch, ModelProfile profile, Job job, Device device, DeviceKind kind, long? currentTotal = null)
    {
        var singles = new List<(ParameterChange Change, Job Job)>();
        // Without an SDPA path (gpt_oss's sinks) transformers runs eager whatever is asked: SDPA is no change to offer. Its
        // flash kernel for sinks (kernels-community/vllm-flash-attn3) has no backward, so it is offered for inference only.
        if (job.Attention == AttentionKernel.Eager && arch.SupportsSdpa) singles.Add((Change(JobParameters.Attention, "sdpa"), job with { Attention = AttentionKernel.Sdpa }));
        else if (job.Attention == AttentionKernel.Eager && !job.IsTraining && kind == DeviceKind.Gpu) singles.Add((Change(JobParameters.Attention, "flash"), job with { Attention = AttentionKernel.Flash }));
        if (job.IsTraining)
        {
            // Rules other than backprop keep no graph across blocks (nothing to checkpoint) and run a step's micro-batches as
            // one batch (accumulation saves nothing).
            bool backprop = job.Rule == LearningRule.Backprop;
            if (backprop && job.Checkpointing == Checkpointing.None) singles.Add((Change(JobParameters.Checkpointing, "full"), job with { Checkpointing = Checkpointing.Full }));
            if (backprop && job.Batch > 1) singles.Add(MicroBatch(profile, job, device, kind));
            // torchtune's optimizer_in_bwd: each parameter steps as soon as its gradient is complete and frees it, so the step
            // holds one gradient instead of all of them, with the same updates (but no accumulation and no clipping by the
            // global gradient norm). Worth offering where the gradients are the model's size: not for adapters. On a GPU,
            // where its step is traced and replayed.
            if (backprop && kind == DeviceKind.Gpu && !job.OptimizerInBackward && job.GradAccumulation == 1 && !job.Method.UsesAdapters())
                singles.Add((new ParameterChange(new Setting(JobParameters.OptimizerInBackward)), job with { OptimizerInBackward = true }));
            if (job.Optimizer == OptimizerKind.AdamW && !job.Method.UsesAdapters() && job.Rule != LearningRule.EsDirect) singles.Add((Change(JobParameters.Optimizer, "adamw-8bit"), job with { Optimizer = OptimizerKind.AdamW8bit }));
            // LoRA trains on either device (TorchSharp's CPU trainer too); QLoRA's NF4 kernels need CUDA.
            if (!job.Method.UsesAdapters())
                singles.Add((Change(JobParameters.Method, "lora"), job with { Method = TrainingMethod.Lora, FreezePatterns = [], WeightsDtype = null }));
            // A pre-quantized checkpoint (job.StoredFormat) is trained over as stored: re-quantizing it is no fix to offer.
            if (job.ResolvedWeightsDtype == DType.Nf4 && job.StoredFormat is null) singles.Add((Change(JobParameters.WeightsDtype, "nf4-dq"), job with { WeightsDtype = DType.Nf4Dq }));
            if (job.Method != TrainingMethod.QLora && kind == DeviceKind.Gpu && job.StoredFormat is null)
                singles.Add((Change(JobParameters.Method, "qlora"), job with { Method = TrainingMethod.QLora, FreezePatterns = [], WeightsDtype = null }));
        }
        else
        {
            // Quantized weights need a GPU's kernels (Planner.DeviceKindOf refuses them on the CPU device). An fp8 KV cache is
            // no fix: transformers has none (KvDtypeNote).
            if (kind == DeviceKind.Gpu && job.ResolvedWeightsDtype.Bits() > 8) singles.Add((Change(JobParameters.WeightsDtype, "int8"), job with { WeightsDtype = DType.Int8 }));
            if (kind == DeviceKind.Gpu && job.ResolvedWeightsDtype.Bits() > 4.5) singles.Add((Change(JobParameters.WeightsDtype, "nf4"), job with { WeightsDtype = DType.Nf4 }));
        }

        // A change the device cannot run (a flash kernel below its compute capability) is no fix either.
        singles.RemoveAll(s => DeviceSupport.Unsupported(arch, s.Job, device) is not null);

        // A change that does not lower the total is no fix (re-quantizing a checkpoint whose fused MoE experts bitsandbytes
        // leaves 16-bit can raise it): it is neither listed nor kept in a combination.
        long total = currentTotal ?? LedgerBuilder.Build(profile, job, kind, explain: false).TotalBytes;
        var results = singles.Select((s, i) => (Order: i, Fix: Evaluate(arch, profile, s.Change, s.Job, device, kind))).ToList();
        if (!results.Any(r => r.Fix.Fits) && singles.Count > 1)
        {
            // Cumulative: apply the changes in rank order until the job fits; if all of them are not enough for a
            // training job, last shorten the sequence to the longest that fits with all of them.
            var current = job;
            var applied = new List<ParameterChange>();
            long runningTotal = total;
            bool fits = false;
            foreach (var (change, changed) in singles)
            {
                var merged = Merge(current, job, changed);
                // The step in backward and accumulation exclude each other: whichever came first in the ranking stays.
                if (merged.OptimizerInBackward && merged.GradAccumulation > 1) continue;
                // A later change of the same parameter replaces the earlier one (method lora, then method qlora).
                var withChange = applied.Where(a => a.Settings[0].Parameter != change.Settings[0].Parameter).Append(change).ToList();
                var fix = Evaluate(arch, profile, Combined(withChange), merged, device, kind);
                if (!fix.Fits && fix.TotalBytes >= runningTotal) continue;
                (current, applied, runningTotal) = (merged, withChange, fix.TotalBytes);
                results.Add((100 + applied.Count, fix));
                if (fits = fix.Fits) break;
            }
            if (!fits && job.IsTraining && Shorter(arch, profile, current, device, kind) is { } cut)
                results.Add((100 + applied.Count + 1, Evaluate(arch, profile, Combined([.. applied, new ParameterChange(Set(JobParameters.Seq, cut.Seq))]), cut, device, kind)));
        }
        // When no single change fits, a shorter sequence alone too: offered last, as it changes what the model learns
        // from (longer documents are cut). Not searched when another change fits by itself.
        if (job.IsTraining && !results.Any(r => r.Order < 100 && r.Fix.Fits) && Shorter(arch, profile, job, device, kind) is { } alone)
            results.Add((200, Evaluate(arch, profile, new ParameterChange(Set(JobParameters.Seq, alone.Seq)), alone, device, kind)));
        return results
            .Where(r => r.Fix.Fits || r.Fix.TotalBytes < total)
            .DistinctBy(r => r.Fix.Change)
            .OrderByDescending(r => r.Fix.Fits)
            .ThenBy(r => r.Fix.Fits ? r.Order : r.Fix.TotalBytes)
            .Select(r => r.Fix)
            .ToList();
    }

    /// <summary>The job at the longest sequence that fits, when that is shorter than its own (null: none fits, or it already does).</summary>
    private static Job? Shorter(ModelArchitecture arch, ModelProfile profile, Job job, Device device, DeviceKind kind)
    {
        var p = SameSelection(profile, job) ? profile : ModelProfile.Create(Planner.SelectionFor(arch, job));
        int seq = FitSearch.Largest(p, job, device, kind, "seq");
        return seq >= 1 && seq < job.Seq ? job with { Seq = seq } : null;
    }

    private static (ParameterChange, Job) MicroBatch(ModelProfile profile, Job job, Device device, DeviceKind kind)
    {
        int batch = job.Batch, accum = job.GradAccumulation;
        while (batch > 1)
        {
            batch = (batch + 1) / 2;
            accum *= 2;
            var j = job with { Batch = batch, GradAccumulation = accum };
            if (j.OptimizerInBackward) j = j with { OptimizerInBackward = false };
            if (FitCheck.Fits(profile, j, device, kind)) return (new ParameterChange(Set(JobParameters.Batch, batch), Set(JobParameters.GradAccumulation, accum)), j);
        }
        var one = job with { Batch = 1, GradAccumulation = job.GradAccumulation * job.Batch, OptimizerInBackward = false };
        return (new ParameterChange(Set(JobParameters.Batch, 1), Set(JobParameters.GradAccumulation, one.GradAccumulation)), one);
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

    private static ParameterChange Change(InputParameter parameter, string value) => new(new Setting(parameter, value));

    private static ParameterChange Combined(IEnumerable<ParameterChange> changes) => new([.. changes.SelectMany(c => c.Settings)]);

    private static Setting Set(InputParameter parameter, int value) => new(parameter, value.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>LoRA and QLoRA with the same adapters train the same tensors, so they share one profile.</summary>
    private static bool SameSelection(ModelProfile profile, Job job) =>
        !job.IsTraining || job.Method == profile.Selection.Method
        || (job.Method.UsesAdapters() && profile.Selection.Method.UsesAdapters() && (job.Lora ?? new LoraConfig()) == profile.Selection.Lora);

    private static FitFix Evaluate(ModelArchitecture arch, ModelProfile profile, ParameterChange change, Job job, Device device, DeviceKind kind)
    {
        var p = SameSelection(profile, job) ? profile : ModelProfile.Create(Planner.SelectionFor(arch, job));
        // Priced as the device runs it (a changed kernel may meet the GPU's SDPA dispatch), so the total shown is the one judged.
        job = DeviceSupport.OnDevice(arch, job, device);
        var ledger = LedgerBuilder.Build(p, job, kind, explain: false);
        var verdict = FitCheck.Verdict(device, ledger, p, job);
        return new FitFix(change, job, ledger.PeakBytes, ledger.TotalBytes, verdict.Fits) { TotalAfterReleaseBytes = verdict.TotalAfterReleaseBytes };
    }
}
