using System.CommandLine;
using System.Globalization;
using Afinado.Planner;
using Afinado.Planner.Catalog;
using Afinado.Planner.Export;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Afinado.Planner.Parallel;

namespace Afinado.Cli.Commands;

/// <summary>
/// <c>afinado export deepspeed|accelerate|torchrun</c>: plans the job on the given GPUs (or searches the
/// least-communication layout that fits <c>--gpu-memory</c>) and writes the engine's config with the plan's numbers.
/// The config goes to stdout (or <c>--out</c>); the per-GPU ledger and the assumptions go to stderr.
/// </summary>
public static class ExportCommand
{
    private static readonly string[] Formats = ["deepspeed", "accelerate", "torchrun"];

    public static Command Build()
    {
        var format = new Argument<string>("format") { Description = "deepspeed | accelerate | torchrun" };
        var output = new Option<string?>("--out") { Description = "Write the config to this file (notes to FILE.notes.txt) instead of stdout." };
        var masterAddr = new Option<string>("--master-addr") { Description = "Node 0's address for multi-node launches.", DefaultValueFactory = _ => "127.0.0.1" };
        var masterPort = new Option<int>("--master-port") { Description = "Rendezvous port.", DefaultValueFactory = _ => 29500 };
        var script = new Option<string>("--script") { Description = "Training script torchrun launches.", DefaultValueFactory = _ => "train.py" };
        var planOptions = new PlanOptions();
        var parallel = new LayoutOptions();

        var cmd = new Command("export", "Write a DeepSpeed JSON, an accelerate YAML or a torchrun command for a planned multi-GPU job.");
        cmd.Arguments.Add(format);
        foreach (var o in planOptions.All) cmd.Options.Add(o);
        foreach (var o in parallel.All) cmd.Options.Add(o);
        foreach (var o in new Option[] { output, masterAddr, masterPort, script }) cmd.Options.Add(o);

        cmd.SetAction(p =>
        {
            var stdout = p.InvocationConfiguration.Output;
            var stderr = p.InvocationConfiguration.Error;
            string fmt = p.GetValue(format)!.Trim().ToLowerInvariant();
            if (!Formats.Contains(fmt))
                throw new InputError("format", $"\"{fmt}\" is not an export format", "Use deepspeed, accelerate or torchrun.");
            if (p.GetValue(parallel.FsdpVersion) != 1)
                throw new InputError("--fsdp-version", "the exporters write FSDP1 configurations (accelerate fsdp_version 1, torchrun FullyShardedDataParallel settings)", "Drop --fsdp-version for export.");
            if (p.GetValue(parallel.FsdpShardEmbeddings))
                throw new InputError("--fsdp-shard-embeddings", "the exported configurations wrap decoder layers only (TRANSFORMER_BASED_WRAP); the embedding and head stay in the root unit", "Drop --fsdp-shard-embeddings for export.");
            InputRange.Whole("--master-port", p.GetValue(masterPort), 1, 65_535, "a TCP port");
            if (p.GetValue(output) is { } outFile) OutputPaths.File("--out", outFile);
            var arch = ModelSource.Resolve(p.GetValue(planOptions.Model)!);
            var job = planOptions.Job(p);
            // Only GPUs the user names are checked (plan's default list of common GPUs is not a target here).
            bool devicesGiven = (p.GetValue(planOptions.Gpu) ?? []).Length > 0 || (p.GetValue(planOptions.GpuMemory) ?? []).Length > 0;
            var devices = devicesGiven ? planOptions.Devices(p) : [];
            var plan = Planner.Fit.Planner.Create(arch, job, devices, suggestFixes: false);
            var family = fmt == "torchrun" ? EngineFamily.Fsdp : EngineFamily.DeepSpeed;

            ParallelLedger ledger;
            if (devices.Count > 0)
            {
                var verdict = ParallelPlanning.Verdicts(plan, p, parallel, devices, family)[0];
                if (!verdict.Fits)
                    return DoesNotFit(stderr, $"no layout on {verdict.Ledger.Layout.Gpus} GPUs fits {verdict.Device.Name}" + (parallel.CpuBytesPerNode(p) is { } c ? $" with {Gb(c)} CPU RAM per node" : ""),
                        verdict.Alternatives.Count > 0 ? verdict.Alternatives.Select(a => a.Ledger).ToList() : [verdict.Ledger]);
                ledger = verdict.Ledger;
                if (!parallel.ShardingGiven(p)) stderr.WriteLine($"# layout chosen (least communication that fits {verdict.Device.Name}): {ledger.Layout.Describe()}");
                if (verdict.UsesFewerGpus)
                    stderr.WriteLine($"# no layout fits on all {verdict.RequestedGpus} GPUs (more ranks need more CPU RAM per node); the files run on {ledger.Layout.Gpus} of them");
            }
            else
            {
                ledger = ParallelMemory.Plan(PlanBridge.FromPlan(plan), parallel.Layout(p).Validate(arch));
                if (!ledger.FitsCpu(parallel.CpuBytesPerNode(p)))
                    return DoesNotFit(stderr, $"{Gb(ledger.CpuBytesPerNode)} of CPU RAM per node exceeds --cpu-memory {Gb(parallel.CpuBytesPerNode(p)!.Value)}", [ledger]);
            }

            var run = new TrainingRun
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
                Model = arch.Name,
                Script = p.GetValue(script)!,
                MasterAddress = p.GetValue(masterAddr)!,
                MasterPort = p.GetValue(masterPort),
                PlannedGpuBytes = ledger.GpuPeakBytes,
                PlannedGpuUpperBytes = ledger.GpuNvidiaSmiUpperBytes ?? 0,
                PlannedCpuBytesPerNode = ledger.CpuBytesPerNode,
            };
            var file = fmt switch
            {
                "deepspeed" => DeepSpeedConfigWriter.Write(run),
                "accelerate" => AccelerateConfigWriter.Write(run),
                _ => TorchrunCommandWriter.Write(run),
            };

            WriteLedger(stderr, ledger);
            if (p.GetValue(output) is { } path)
            {
                File.WriteAllText(path, file.Content);
                File.WriteAllText(path + ".notes.txt", string.Concat(file.Assumptions.Select(a => a + "\n")));
                stderr.WriteLine($"# wrote {path} and {path}.notes.txt");
            }
            else
            {
                stdout.Write(file.Content);
                if (fmt == "deepspeed") foreach (var a in file.Assumptions) stderr.WriteLine($"# {a}");
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static int DoesNotFit(TextWriter err, string why, IReadOnlyList<ParallelLedger> alternatives)
    {
        err.WriteLine($"does not fit: {why}.");
        foreach (var l in alternatives)
            err.WriteLine($"  {l.Layout.Describe()}: {Gb(l.GpuPeakBytes)} per GPU, {Gb(l.CpuBytesPerNode)} CPU RAM per node");
        err.WriteLine("Nothing was written. Add GPUs, --offload, --checkpointing full, a smaller --batch, or --method lora/qlora.");
        return CliApp.ExitDoesNotFit;
    }

    internal static void WriteLedger(TextWriter err, ParallelLedger ledger)
    {
        err.WriteLine($"# per GPU ({ledger.Layout.Describe()}): peak {Gb(ledger.GpuPeakBytes)} in {Code(ledger.GpuPeakPhase)}");
        foreach (var line in ledger.Gpu)
            err.WriteLine($"#   {line.Name,-66} {Gb(line.RoundedBytes),12}  [{Code(line.Phases)}] {line.Formula}");
        err.WriteLine($"# CPU RAM per node: {Gb(ledger.CpuBytesPerNode)}");
        foreach (var line in ledger.CpuPerNode)
            err.WriteLine($"#   {line.Name,-66} {Gb(line.RoundedBytes),12}  [{Code(line.Phases)}] {line.Formula}");
    }

    private static readonly Phase[] CodedMoments = [.. Phases.StepMoments, Phase.ModelLoad];

    /// <summary>The moments as these comment lines have always printed them: identifiers, the whole step "Always", forward
    /// through backward "Backward" (scripts may read them, so the parallel table's prose wording is not used).</summary>
    private static string Code(Phase moments) => moments switch
    {
        Phase.Step => "Always",
        Phase.ForwardAndBackward => "Backward",
        Phase.None => "None",
        _ => string.Join(", ", CodedMoments.Where(m => (moments & m) != 0).Select(m => m.ToString())),
    };

    private static string Gb(long bytes) => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB";
}
