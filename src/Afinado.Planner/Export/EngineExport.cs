using System.Globalization;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Export;

/// <summary>The engine files <c>afinado export</c> writes.</summary>
public enum ExportFormat { DeepSpeed, Accelerate, Torchrun }

/// <summary>How the exported launch reaches node 0 and which script it runs.</summary>
public sealed record LaunchSettings(string Script = "train.py", string MasterAddress = "127.0.0.1", int MasterPort = 29500);

/// <summary>
/// An export as planned: the ledger its file was written for, the file, and notes on the layout chosen — or, when no layout
/// fits, why (<see cref="DoesNotFit"/>) with the layouts tried, and no file.
/// </summary>
public sealed record EngineExportResult(ParallelLedger Ledger, ExportedFile? File, IReadOnlyList<string> Notes, InputText? DoesNotFit,
    IReadOnlyList<ParallelLedger> Tried);

/// <summary>
/// <c>afinado export</c> (and the page's downloads) as a library call: plans the job on the GPUs given (or, with none, on
/// the layout as given), picks the least-communication layout that fits when no sharding was named, and writes the
/// engine's file with the plan's numbers.
/// </summary>
public static class EngineExport
{
    public static ExportFormat ParseFormat(string text) => text.Trim().ToLowerInvariant() switch
    {
        "deepspeed" => ExportFormat.DeepSpeed,
        "accelerate" => ExportFormat.Accelerate,
        "torchrun" => ExportFormat.Torchrun,
        var f => throw new InputError("format", $"\"{f}\" is not an export format", "Use deepspeed, accelerate or torchrun."),
    };

    public static EngineExportResult Create(Architecture.ModelArchitecture arch, Job job, ExportFormat format, LayoutRequest request,
        IReadOnlyList<Device> devices, LaunchSettings launch)
    {
        if (request.Layout.FsdpVersion != 1)
            throw new InputError(LayoutParameters.FsdpVersion, "the exporters write FSDP1 configurations (accelerate fsdp_version 1, torchrun FullyShardedDataParallel settings)", $"Drop {LayoutParameters.FsdpVersion} for export.");
        if (request.Layout.ShardEmbeddingsSeparately)
            throw new InputError(LayoutParameters.ShardEmbeddingsSeparately, "the exported configurations wrap decoder layers only (TRANSFORMER_BASED_WRAP); the embedding and head stay in the root unit", $"Drop {LayoutParameters.ShardEmbeddingsSeparately} for export.");
        InputRange.Whole(ExportParameters.MasterPort, launch.MasterPort, 1, 65_535, "a TCP port");
        var plan = Fit.Planner.Create(arch, job, devices, suggestFixes: false);
        var family = format == ExportFormat.Torchrun ? EngineFamily.Fsdp : EngineFamily.DeepSpeed;
        var notes = new List<string>();
        ParallelLedger ledger;
        if (devices.Count > 0)
        {
            var verdict = MultiGpuPlanner.Verdicts(plan, request, devices, family)[0];
            if (verdict.Unsupported is { } why)
                return new(verdict.Ledger, null, notes, $"{verdict.Device.Name} cannot run this job: {why}", [verdict.Ledger]);
            if (!verdict.Fits)
                return new(verdict.Ledger, null, notes,
                    $"no layout on {verdict.Ledger.Layout.Gpus} GPUs fits {verdict.Device.Name}" + (request.CpuBytesPerNode is { } c ? $" with {Gb(c)} CPU RAM per node" : ""),
                    verdict.Alternatives.Count > 0 ? verdict.Alternatives.Select(a => a.Ledger).ToList() : [verdict.Ledger]);
            ledger = verdict.Ledger;
            if (!request.ShardingGiven) notes.Add($"layout chosen (least communication that fits {verdict.Device.Name}): {ledger.Layout.Describe()}");
            if (verdict.UsesFewerGpus)
                notes.Add($"no layout fits on all {verdict.RequestedGpus} GPUs (more ranks need more CPU RAM per node); the files run on {ledger.Layout.Gpus} of them");
        }
        else
        {
            ledger = ParallelMemory.Plan(PlanBridge.FromPlan(plan), request.Layout.Validate(arch));
            if (!ledger.FitsCpu(request.CpuBytesPerNode))
                return new(ledger, null, notes, (InputText)$"{Gb(ledger.CpuBytesPerNode)} of CPU RAM per node exceeds {LayoutParameters.CpuBytesPerNode} {Gb(request.CpuBytesPerNode!.Value)}", [ledger]);
        }
        var run = Run(job, ledger, arch.Name, launch) with { AutoEpPreset = ledger.Layout.ExpertParallel > 1 ? AutoEpPresets.For(arch) : null };
        var file = format switch
        {
            ExportFormat.DeepSpeed => DeepSpeedConfigWriter.Write(run),
            ExportFormat.Accelerate => AccelerateConfigWriter.Write(run),
            _ => TorchrunCommandWriter.Write(run),
        };
        return new(ledger, file, notes, null, []);
    }

    /// <summary>The run the engine files describe: the job's batch, precision and checkpointing on the planned layout.</summary>
    public static TrainingRun Run(Job job, ParallelLedger ledger, string model, LaunchSettings launch) => new()
    {
        Layout = ledger.Layout,
        DeepSpeed = ledger.DeepSpeed,
        MicroBatch = job.Batch,
        GradientAccumulation = job.GradAccumulation,
        Precision = job.Precision switch
        {
            Precision.Fp32 => RunPrecision.Fp32,
            Precision.AmpBf16 => RunPrecision.AmpBf16,
            Precision.AmpFp16 => RunPrecision.AmpFp16,
            Precision.Fp16 => RunPrecision.PureFp16,
            _ => RunPrecision.PureBf16,
        },
        ActivationCheckpointing = job.Checkpointing == Checkpointing.Full,
        AdaptersOnly = job.Method.UsesAdapters(),
        Model = model,
        Script = launch.Script,
        MasterAddress = launch.MasterAddress,
        MasterPort = launch.MasterPort,
        PlannedGpuBytes = ledger.GpuPeakBytes,
        PlannedGpuUpperBytes = ledger.GpuNvidiaSmiUpperBytes ?? 0,
        PlannedCpuBytesPerNode = ledger.CpuBytesPerNode,
    };

    internal static string Gb(long bytes) => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB";
}
