using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>What transformers loads when a script names no dtype, for an inference plan's note (<see cref="Plan.DefaultLoadNote"/>).</summary>
internal static class DefaultLoad
{
    /// <summary>
    /// transformers ≥ 5 loads a model in the dtype its config names (<c>from_pretrained</c>'s default <c>dtype="auto"</c>,
    /// transformers PR #42805; before, fp32 always), else in its checkpoint's. A 16-bit inference plan of a model whose
    /// config names float32 (Gemma 2, OLMo 2 13B) is what <c>dtype=torch.bfloat16</c> loads, not what the default load holds:
    /// say so with the default load's total. A config naming no dtype (GPT-2) leaves it to the checkpoint: its headers beside
    /// config.json settle it when they hold one floating dtype (<see cref="ModelArchitecture.CheckpointFloatDtype"/>), else the note
    /// points at <c>afinado inspect</c>.
    /// Checkpoints read from their headers are planned as stored, and quantized ones in their format: no note.
    /// </summary>
    public static (InputText? Note, long? Total) For(ModelArchitecture arch, ModelProfile profile, Job job, DeviceKind kind)
    {
        if (job.IsTraining || kind != DeviceKind.Gpu || job.WeightsDtype is not null || job.Checkpoint is not null
            || arch.StoredWeightBytes is not null || arch.CheckpointQuantMethod is not null || job.Precision.ComputeBytes() != 2)
            return (null, null);
        const string Source = "from_pretrained's dtype=\"auto\" default, transformers PR #42805";
        string? loads = arch.ConfigDtype ?? arch.CheckpointFloatDtype;
        if (loads is null)
            return ((InputText)$"config.json names no dtype, so transformers ≥ 5 loads the checkpoint's own ({Source}); this plan assumes {job.Precision.Name()} — if the checkpoint is float32 (`afinado inspect` shows its dtypes), plan {JobParameters.Precision} fp32 or load with dtype=torch.bfloat16", null);
        if (loads is not ("float32" or "float"))
            return (null, null);
        string why = arch.ConfigDtype is not null ? "config.json names float32" : "config.json names no dtype and the checkpoint beside it is float32";
        long total = LedgerBuilder.Build(profile, job with { Precision = Precision.Fp32 }, kind, explain: false).TotalBytes;
        return ((InputText)$"{why}, so transformers ≥ 5 loads it in fp32 by default ({Source}): that load's total is {ByteSize.Format(total)}; this plan is the {job.Precision.Name()} load (dtype=torch.bfloat16) — plan {JobParameters.Precision} fp32 for the default", total);
    }
}
