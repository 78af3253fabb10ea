using System.Globalization;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Export;

/// <summary>
/// Writes a torchrun launch (https://docs.pytorch.org/docs/stable/elastic/run.html) for a script built on the Hugging Face
/// Trainer: FSDP is chosen with TrainingArguments' <c>--fsdp "full_shard|shard_grad_op|hybrid_shard [offload] auto_wrap"</c>,
/// DeepSpeed with <c>--deepspeed ds_zeroN.json</c> (written by the DeepSpeed exporter). Assumptions are shell comments.
/// </summary>
public static class TorchrunCommandWriter
{
    public static ExportedFile Write(TrainingRun run)
    {
        run.Validate();
        var layout = run.Layout;
        string deepSpeedConfigFile = DeepSpeedConfigWriter.FileName(layout);
        var launcher = new List<string> { "torchrun" };
        if (layout.Nodes == 1)
            launcher.AddRange(["--standalone", "--nnodes", "1", "--nproc-per-node", Str(layout.GpusPerNode)]);
        else
            launcher.AddRange(["--nnodes", Str(layout.Nodes), "--nproc-per-node", Str(layout.GpusPerNode), "--node-rank", "0",
                "--master-addr", run.MasterAddress, "--master-port", Str(run.MasterPort)]);

        var script = new List<string>
        {
            "--per_device_train_batch_size", Str(run.MicroBatch),
            "--gradient_accumulation_steps", Str(run.GradientAccumulation),
            "--max_grad_norm", run.GradientClipping.ToString("0.0##", CultureInfo.InvariantCulture),
        };
        if (run.IsBf16) script.Add("--bf16");
        if (run.IsFp16) script.Add("--fp16");
        if (run.ActivationCheckpointing) script.Add("--gradient_checkpointing");
        if (layout.Engine == ParallelEngine.Fsdp)
        {
            string strategy = layout.Sharding switch
            {
                Sharding.FsdpGradOp => "shard_grad_op",
                Sharding.FsdpHybrid => "hybrid_shard",
                _ => "full_shard",
            };
            script.AddRange(["--fsdp", $"\"{strategy}{(layout.Offload == Offload.Params ? " offload" : "")} auto_wrap\""]);
        }
        else if (layout.Engine == ParallelEngine.DeepSpeed)
            script.AddRange(["--deepspeed", deepSpeedConfigFile]);

        var flags = launcher.Concat(script).Where(a => a.StartsWith("--", StringComparison.Ordinal));
        KnownKeys.Check(flags, KnownKeys.Torchrun, "torchrun");

        var notes = run.Assumptions().ToList();
        notes.Add($"{run.Script} is a transformers Trainer script (TrainingArguments flags); the model is {(run.Model == "" ? "chosen inside it" : run.Model)}.");
        if (layout.Nodes > 1) notes.Add("On node k, change --node-rank 0 to --node-rank k.");
        if (layout.Engine == ParallelEngine.DeepSpeed) notes.Add($"{deepSpeedConfigFile}: write it with `afinado export deepspeed` and the same flags.");
        var text = string.Concat(notes.Select(n => $"# {n}\n"))
                   + string.Join(" ", launcher) + " " + run.Script + " \\\n  " + string.Join(" ", script) + "\n";
        return new ExportedFile("launch.sh", text, notes);
    }

    private static string Str(int x) => x.ToString(CultureInfo.InvariantCulture);
}
