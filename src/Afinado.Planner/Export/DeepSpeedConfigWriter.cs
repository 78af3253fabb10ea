using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Export;

/// <summary>
/// Writes a DeepSpeed JSON (docs/_pages/config-json.md, ecosystem.md §6.1) with concrete numbers only: the batch
/// identity, precision, ZeRO stage, offload devices and the very bucket sizes the ledger counted.
/// JSON has no comments, so the assumptions come back in <see cref="ExportedFile.Assumptions"/> for a side note.
/// </summary>
public static class DeepSpeedConfigWriter
{
    public static ExportedFile Write(TrainingRun run)
    {
        run.Validate();
        var layout = run.Layout;
        if (layout.Engine == ParallelEngine.Fsdp)
            throw new InputError(LayoutParameters.Fsdp, "a DeepSpeed config cannot express an FSDP layout", $"Use {LayoutParameters.Zero} 0|1|2|3 for DeepSpeed, or export accelerate/torchrun for FSDP.");
        var s = run.DeepSpeed;
        int stage = layout.ZeroStage;

        var zero = new JsonObject { ["stage"] = stage };
        if (stage > 0)
        {
            if (layout.Offload != Offload.None)
                zero["offload_optimizer"] = new JsonObject { ["device"] = "cpu", ["pin_memory"] = true };
            if (layout.Offload == Offload.Params)
                zero["offload_param"] = new JsonObject { ["device"] = "cpu", ["pin_memory"] = true };
            zero["overlap_comm"] = s.OverlapComm;
            zero["contiguous_gradients"] = s.ContiguousGradients;
            zero["reduce_bucket_size"] = s.ReduceBucketSize;
            if (stage < 3)
            {
                zero["reduce_scatter"] = true;
                zero["allgather_partitions"] = true;
                zero["allgather_bucket_size"] = s.AllgatherBucketSize;
            }
            else
            {
                zero["stage3_prefetch_bucket_size"] = s.Stage3PrefetchBucketSize;
                zero["stage3_param_persistence_threshold"] = s.Stage3ParamPersistenceThreshold;
                zero["stage3_max_live_parameters"] = s.Stage3MaxLiveParameters;
                zero["stage3_max_reuse_distance"] = s.Stage3MaxReuseDistance;
                zero["sub_group_size"] = s.SubGroupSize;
                zero["stage3_gather_16bit_weights_on_model_save"] = true;
            }
        }

        var root = new JsonObject
        {
            ["train_batch_size"] = run.GlobalBatch,
            ["train_micro_batch_size_per_gpu"] = run.MicroBatch,
            ["gradient_accumulation_steps"] = run.GradientAccumulation,
            ["gradient_clipping"] = run.GradientClipping,
            ["bf16"] = new JsonObject { ["enabled"] = run.IsBf16 },
        };
        root["fp16"] = run.IsFp16
            ? new JsonObject
            {
                ["enabled"] = true,
                ["loss_scale"] = 0,
                ["initial_scale_power"] = 16,
                ["loss_scale_window"] = 1000,
                ["hysteresis"] = 2,
                ["min_loss_scale"] = 1,
            }
            : new JsonObject { ["enabled"] = false };
        root["zero_optimization"] = zero;
        if (layout.ExpertParallel > 1)
            root["expert_parallel"] = new JsonObject { ["enabled"] = true, ["autoep_size"] = layout.ExpertParallel, ["preset_model"] = run.AutoEpPreset };
        root["steps_per_print"] = 100;
        root["wall_clock_breakdown"] = false;

        KnownKeys.Check(Flatten(root), KnownKeys.DeepSpeed, "DeepSpeed");
        var notes = run.Assumptions().ToList();
        notes.Add($"DeepSpeed ZeRO stage {stage}; bucket sizes are the ones the plan counted (reduce {s.ReduceBucketSize:N0} elements" +
                  (stage == 3 ? $", prefetch {s.Stage3PrefetchBucketSize:N0}, persistence threshold {s.Stage3ParamPersistenceThreshold:N0} = h², 0.9·h², 10·h as the HF Trainer's \"auto\")." : $", all-gather {s.AllgatherBucketSize:N0}; DeepSpeed defaults)."));
        if (layout.Offload != Offload.None)
            notes.Add("Offload: DeepSpeed runs the step with its CPU Adam (zero_force_ds_cpu_optimizer); pinned host memory needs a generous `ulimit -l`.");
        if (run.Precision is RunPrecision.PureBf16 or RunPrecision.PureFp16)
            notes.Add("DeepSpeed's 16-bit modes keep fp32 master weights and optimizer states; the plan counts them.");
        var json = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        return new ExportedFile(FileName(layout), json + "\n", notes);
    }

    /// <summary>The name the other exporters refer to (accelerate's deepspeed_config_file, torchrun's --deepspeed).</summary>
    public static string FileName(ParallelLayout layout) =>
        $"ds_zero{layout.ZeroStage}{(layout.Offload == Offload.None ? "" : "_offload_" + layout.Offload.ToString().ToLowerInvariant())}{(layout.ExpertParallel > 1 ? $"_ep{layout.ExpertParallel}" : "")}.json";

    /// <summary>Dotted paths of every leaf key (<c>zero_optimization.offload_param.device</c>).</summary>
    public static IEnumerable<string> Flatten(JsonNode node, string prefix = "")
    {
        if (node is JsonObject obj)
        {
            foreach (var (key, value) in obj)
            {
                string path = prefix == "" ? key : $"{prefix}.{key}";
                if (value is JsonObject) foreach (var p in Flatten(value, path)) yield return p;
                else yield return path;
            }
        }
    }
}
