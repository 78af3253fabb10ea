using Afinado.Planner.Parallel;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Export;

/// <summary>Numeric precision of the run, as the engines' configs need to know it.</summary>
public enum RunPrecision
{
    Fp32,
    /// <summary>bf16 autocast with fp32 master weights.</summary>
    AmpBf16,
    AmpFp16,
    /// <summary>Weights loaded in bf16 by the script, no autocast (e.g. QLoRA with bf16 quant storage).</summary>
    PureBf16,
    PureFp16,
}

/// <summary>
/// Everything an exporter writes: the layout and engine knobs of the plan plus the batch arithmetic. Exporters turn
/// it into files with concrete values only (no "auto"), so the run reproduces what was planned.
/// </summary>
public sealed record TrainingRun
{
    public required ParallelLayout Layout { get; init; }
    public required DeepSpeedSettings DeepSpeed { get; init; }
    public required int MicroBatch { get; init; }
    public int GradientAccumulation { get; init; } = 1;
    public RunPrecision Precision { get; init; } = RunPrecision.AmpBf16;
    public double GradientClipping { get; init; } = 1.0;
    public bool ActivationCheckpointing { get; init; }
    /// <summary>Only adapters are trained (LoRA/QLoRA): FSDP then needs use_orig_params=false to save memory (PEFT docs).</summary>
    public bool AdaptersOnly { get; init; }
    public string Model { get; init; } = "";
    public string Script { get; init; } = "train.py";
    public string MasterAddress { get; init; } = "127.0.0.1";
    public int MasterPort { get; init; } = 29500;
    /// <summary>What the plan predicted per GPU and per node, quoted in the files' notes.</summary>
    public long PlannedGpuBytes { get; init; }
    public long PlannedCpuBytesPerNode { get; init; }
    /// <summary>DeepSpeed AutoEP's <c>preset_model</c> for the model's family (null without expert parallelism).</summary>
    public string? AutoEpPreset { get; init; }
    /// <summary>FSDP1: how high nvidia-smi may read per GPU (<see cref="ParallelLedger.GpuNvidiaSmiUpperBytes"/>); 0 = none.</summary>
    public long PlannedGpuUpperBytes { get; init; }

    /// <summary>DeepSpeed's batch identity: train_batch_size = micro × accumulation × data-parallel degree.</summary>
    public long GlobalBatch => (long)MicroBatch * GradientAccumulation * Layout.DataParallel;

    public bool Is16Bit => Precision != RunPrecision.Fp32;
    public bool IsBf16 => Precision is RunPrecision.AmpBf16 or RunPrecision.PureBf16;
    public bool IsFp16 => Precision is RunPrecision.AmpFp16 or RunPrecision.PureFp16;

    public TrainingRun Validate()
    {
        if (MicroBatch < 1)
            throw new InputError(JobParameters.Batch, $"micro-batch {MicroBatch} is not positive", $"Give {JobParameters.Batch} 1 or more.");
        if (GradientAccumulation < 1)
            throw new InputError(JobParameters.GradAccumulation, $"{GradientAccumulation} accumulation steps is not positive", $"Give {JobParameters.GradAccumulation} 1 or more.");
        if (MasterPort is < 1 or > 65535)
            throw new InputError(ExportParameters.MasterPort, $"{MasterPort} is not a TCP port", "Give a port between 1 and 65535.");
        if (Layout.TensorParallel > 1)
            throw new InputError(LayoutParameters.TensorParallel, "DeepSpeed JSON, accelerate and the transformers Trainer do not set up Megatron tensor parallelism",
                $"Plan with {LayoutParameters.TensorParallel} (afinado plan) but launch TP with Megatron-LM or nanotron; export with {LayoutParameters.TensorParallel} 1.");
        if (Layout.ExpertParallel > 1 && AutoEpPreset is null)
            throw new InputError(LayoutParameters.ExpertParallel, "expert parallelism is exported as DeepSpeed AutoEP, which needs a preset for the model's family", $"Export with {LayoutParameters.ExpertParallel} 1.");
        return this;
    }

    /// <summary>Assumption lines every exporter states in its comments or notes.</summary>
    public IReadOnlyList<string> Assumptions()
    {
        var lines = new List<string>
        {
            $"Planned by afinado for {(Model == "" ? "the model" : Model)}: {Layout.Describe()}.",
            $"Global batch = micro-batch {MicroBatch} × accumulation {GradientAccumulation} × data-parallel degree {Layout.DataParallel} = {GlobalBatch}.",
            $"Precision: {Precision}; activation checkpointing: {(ActivationCheckpointing ? "on" : "off")}; gradient clipping {GradientClipping}.",
        };
        if (PlannedGpuBytes > 0) lines.Add($"Predicted peak per GPU: {PlannedGpuBytes / 1e9:0.00} GB (incl. CUDA context and NCCL).");
        if (PlannedGpuUpperBytes > PlannedGpuBytes)
            lines.Add($"nvidia-smi may read up to {PlannedGpuUpperBytes / 1e9:0.00} GB per GPU: published FSDP1 runs kept more reserved-but-unallocated memory"
                + (Layout.Offload == Offload.Params ? $", and with CPU offload read up to {(ParallelLedger.Fsdp1OffloadPublishedOverPredicted - 1) * 100:0} % above this estimate." : " than this estimate counts."));
        if (PlannedCpuBytesPerNode > 0) lines.Add($"Predicted CPU RAM per node: {PlannedCpuBytesPerNode / 1e9:0.00} GB.");
        lines.Add("Optimizer: AdamW created by the training script (DeepSpeed/FSDP wrap it); learning rate and schedule stay in the script.");
        if (Layout.ExpertParallel > 1)
            lines.Add($"Expert parallelism: DeepSpeed AutoEP (expert_parallel.autoep_size {Layout.ExpertParallel}, preset {AutoEpPreset}) needs a DeepSpeed release with AutoEP and transformers 5.0 or later; the plan assumes balanced routing.");
        if (Layout.Nodes > 1) lines.Add($"Multi-node: run the same launch on every node with its own rank; {MasterAddress}:{MasterPort} must be node 0's reachable address.");
        return lines;
    }
}
