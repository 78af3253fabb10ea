using Afinado.Planner.Parallel;
using YamlDotNet.Serialization;

namespace Afinado.Planner.Export;

/// <summary>
/// Writes an accelerate config YAML (ecosystem.md §6.3) for plain data parallel, DeepSpeed (inline <c>deepspeed_config</c>)
/// or FSDP (<c>fsdp_config</c>, FSDP v1 keys so that shard-grad-op and hybrid can be named). Assumptions are comments.
/// </summary>
public static class AccelerateConfigWriter
{
    public static ExportedFile Write(TrainingRun run)
    {
        run.Validate();
        var layout = run.Layout;
        var doc = new Dictionary<string, object>
        {
            ["compute_environment"] = "LOCAL_MACHINE",
            ["debug"] = false,
            ["distributed_type"] = layout.Engine switch
            {
                ParallelEngine.DeepSpeed => "DEEPSPEED",
                ParallelEngine.Fsdp => "FSDP",
                _ => layout.IsSingleGpu ? "NO" : "MULTI_GPU",
            },
            ["downcast_bf16"] = "no",
            ["machine_rank"] = 0,
            ["main_training_function"] = "main",
            ["mixed_precision"] = run.Precision switch
            {
                RunPrecision.AmpBf16 => "bf16",
                RunPrecision.AmpFp16 => "fp16",
                _ => "no",
            },
            ["num_machines"] = layout.Nodes,
            ["num_processes"] = layout.Gpus,
            ["rdzv_backend"] = "static",
            ["same_network"] = true,
            ["use_cpu"] = false,
        };
        if (layout.Nodes > 1)
        {
            doc["main_process_ip"] = run.MasterAddress;
            doc["main_process_port"] = run.MasterPort;
        }
        if (layout.Engine == ParallelEngine.DeepSpeed)
        {
            // Point at the JSON the DeepSpeed exporter writes: accelerate's inline keys cannot carry the bucket sizes the
            // plan counted (inline configs run with DeepSpeed's defaults), and a config file must not be mixed with them.
            var ds = new Dictionary<string, object>
            {
                ["deepspeed_config_file"] = DeepSpeedConfigWriter.FileName(layout),
                ["zero3_init_flag"] = layout.ZeroStage == 3,
            };
            if (layout.Nodes > 1) ds["deepspeed_multinode_launcher"] = "standard";
            doc["deepspeed_config"] = ds;
            // The JSON sets bf16/fp16 itself; accelerate wants mixed_precision only when the JSON says "auto".
            doc["mixed_precision"] = "no";
        }
        else if (layout.Engine == ParallelEngine.Fsdp)
        {
            doc["fsdp_config"] = new Dictionary<string, object>
            {
                ["fsdp_version"] = 1,
                ["fsdp_auto_wrap_policy"] = "TRANSFORMER_BASED_WRAP",
                ["fsdp_backward_prefetch"] = "BACKWARD_PRE",
                ["fsdp_cpu_ram_efficient_loading"] = true,
                ["fsdp_forward_prefetch"] = false,
                ["fsdp_offload_params"] = layout.Offload == Offload.Params,
                ["fsdp_sharding_strategy"] = layout.Sharding switch
                {
                    Sharding.FsdpGradOp => "SHARD_GRAD_OP",
                    Sharding.FsdpHybrid => "HYBRID_SHARD",
                    _ => "FULL_SHARD",
                },
                ["fsdp_state_dict_type"] = "SHARDED_STATE_DICT",
                // cpu_ram_efficient_loading loads on rank 0 only, so the other ranks must receive the weights.
                ["fsdp_sync_module_states"] = true,
                ["fsdp_use_orig_params"] = !run.AdaptersOnly,
                ["fsdp_activation_checkpointing"] = run.ActivationCheckpointing,
            };
        }

        KnownKeys.Check(Flatten(doc), KnownKeys.Accelerate, "accelerate");
        var notes = run.Assumptions().ToList();
        if (layout.Engine == ParallelEngine.DeepSpeed)
        {
            notes.Add($"{DeepSpeedConfigWriter.FileName(layout)} holds batch, precision, ZeRO and bucket settings: write it next to this file with `afinado export deepspeed` and the same flags.");
            notes.Add($"Pass --per_device_train_batch_size {run.MicroBatch} --gradient_accumulation_steps {run.GradientAccumulation} to the script, matching the JSON.");
        }
        if (layout.Engine == ParallelEngine.Fsdp)
        {
            notes.Add($"Micro-batch {run.MicroBatch} per GPU and accumulation {run.GradientAccumulation} are training-script arguments (--per_device_train_batch_size, --gradient_accumulation_steps).");
            notes.Add(run.AdaptersOnly && layout.FsdpVersion == 1
                ? "The plan assumed one FSDP unit per decoder layer (TRANSFORMER_BASED_WRAP) plus one per LoRA factor (PEFT's fsdp_auto_wrap_policy, which the Trainer applies); BACKWARD_PRE then prefetches a LoRA factor, so one decoder layer is gathered at a time."
                : "The plan assumed one FSDP unit per decoder layer (TRANSFORMER_BASED_WRAP) and one prefetched unit (BACKWARD_PRE).");
            if (run.ActivationCheckpointing) notes.Add("Checkpointing via fsdp_activation_checkpointing: do not also pass --gradient_checkpointing (it would add an extra all-gather).");
            if (run.AdaptersOnly) notes.Add("fsdp_use_orig_params: false, as the PEFT docs require for adapter training to save memory.");
        }

        var serializer = new SerializerBuilder().WithQuotingNecessaryStrings(quoteYaml1_1Strings: true).Build(); // accelerate reads YAML 1.1 (PyYAML): bare no = false
        var yaml = serializer.Serialize(doc);
        var header = string.Concat(notes.Select(n => $"# {n}\n"));
        string name = layout.Engine switch
        {
            ParallelEngine.DeepSpeed => $"accelerate_deepspeed_zero{layout.ZeroStage}.yaml",
            ParallelEngine.Fsdp => "accelerate_fsdp.yaml",
            _ => "accelerate_ddp.yaml",
        };
        return new ExportedFile(name, header + yaml, notes);
    }

    /// <summary>Dotted paths of every leaf key of a nested dictionary (or of a parsed YAML mapping).</summary>
    public static IEnumerable<string> Flatten(IDictionary<string, object> doc, string prefix = "")
    {
        foreach (var (key, value) in doc)
        {
            string path = prefix == "" ? key : $"{prefix}.{key}";
            if (value is IDictionary<string, object> inner) foreach (var p in Flatten(inner, path)) yield return p;
            else yield return path;
        }
    }
}
