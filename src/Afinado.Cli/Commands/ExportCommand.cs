using System.CommandLine;
using System.Globalization;
using Afinado.Planner;
using Afinado.Planner.Catalog;
using Afinado.Planner.Export;
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
        var model = new Option<string>("--model") { Description = "Catalog id, config.json path or model folder.", DefaultValueFactory = _ => "meta-llama/Llama-3.1-8B" };
        var method = new Option<string>("--method") { Description = "full | lora | qlora.", DefaultValueFactory = _ => "lora" };
        var loraRank = new Option<int>("--lora-rank") { Description = "LoRA rank r.", DefaultValueFactory = _ => 16 };
        var loraDropout = new Option<double>("--lora-dropout") { Description = "LoRA dropout probability.", DefaultValueFactory = _ => 0.05 };
        var precision = new Option<string>("--precision") { Description = "fp32 | amp-bf16 | amp-fp16 | bf16 | fp16.", DefaultValueFactory = _ => "bf16" };
        var batch = new Option<int>("--batch") { Description = "Micro-batch per GPU (sequences).", DefaultValueFactory = _ => 1 };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence.", DefaultValueFactory = _ => 2048 };
        var checkpointing = new Option<string>("--checkpointing") { Description = "none | full.", DefaultValueFactory = _ => "none" };
        var attention = new Option<string>("--attention") { Description = "eager | sdpa.", DefaultValueFactory = _ => "sdpa" };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Gradient-accumulation steps.", DefaultValueFactory = _ => 1 };
        var gpuMemory = new Option<string?>("--gpu-memory") { Description = "Usable memory of each GPU, e.g. 80GB: checks the fit, and picks the layout when neither --zero nor --fsdp is given." };
        var output = new Option<string?>("--out") { Description = "Write the config to this file (notes to FILE.notes.txt) instead of stdout." };
        var masterAddr = new Option<string>("--master-addr") { Description = "Node 0's address for multi-node launches.", DefaultValueFactory = _ => "127.0.0.1" };
        var masterPort = new Option<int>("--master-port") { Description = "Rendezvous port.", DefaultValueFactory = _ => 29500 };
        var script = new Option<string>("--script") { Description = "Training script torchrun launches.", DefaultValueFactory = _ => "train.py" };
        var parallel = new LayoutOptions();

        var cmd = new Command("export", "Write a DeepSpeed JSON, an accelerate YAML or a torchrun command for a planned multi-GPU job.");
        cmd.Arguments.Add(format);
        foreach (var o in new Option[] { model, method, loraRank, loraDropout, precision, batch, seq, checkpointing, attention, gradAccum, gpuMemory, output, masterAddr, masterPort, script })
            cmd.Options.Add(o);
        foreach (var o in parallel.All) cmd.Options.Add(o);

        cmd.SetAction(p =>
        {
            var stdout = p.InvocationConfiguration.Output;
            var stderr = p.InvocationConfiguration.Error;
            string fmt = p.GetValue(format)!.Trim().ToLowerInvariant();
            if (!Formats.Contains(fmt))
                throw new InputError("format", $"\"{fmt}\" is not an export format", "Use deepspeed, accelerate or torchrun.");
            var arch = ModelSource.Resolve(p.GetValue(model)!);
            var runPrecision = ParsePrecision(p.GetValue(precision)!);
            var spec = new DecoderJobSpec
            {
                Model = arch,
                Adaptation = p.GetValue(method)!.Trim().ToLowerInvariant() switch
                {
                    "full" => AdaptationKind.Full,
                    "lora" => AdaptationKind.Lora,
                    "qlora" => AdaptationKind.QLora,
                    var m => throw new InputError("--method", $"\"{m}\" is not a method export supports", "Use full, lora or qlora."),
                },
                LoraRank = p.GetValue(loraRank),
                LoraDropout = p.GetValue(loraDropout),
                Precision = runPrecision,
                MicroBatch = p.GetValue(batch),
                Seq = p.GetValue(seq),
                Checkpointing = p.GetValue(checkpointing)!.Trim().ToLowerInvariant() switch
                {
                    "none" => false,
                    "full" => true,
                    var c => throw new InputError("--checkpointing", $"\"{c}\" is not a checkpointing mode", "Use none or full."),
                },
                FlashAttention = p.GetValue(attention)!.Trim().ToLowerInvariant() switch
                {
                    "sdpa" => true,
                    "eager" => false,
                    var a => throw new InputError("--attention", $"\"{a}\" is not an attention kernel", "Use eager or sdpa."),
                },
            };
            var job = ParallelJobBuilder.Build(spec);
            var layout = parallel.Layout(p).Validate(arch);
            long? capacity = p.GetValue(gpuMemory) is { } g ? LayoutOptions.ParseSize(g, "--gpu-memory") : null;
            long? cpu = parallel.CpuBytesPerNode(p);

            ParallelLedger ledger;
            if (!parallel.ShardingGiven(p) && layout.Offload == Offload.None && capacity is not null)
            {
                var family = fmt == "torchrun" || parallel.WantsFsdp(p) ? EngineFamily.Fsdp : EngineFamily.DeepSpeed;
                var search = ParallelSearch.LeastCommunication(job, layout.Gpus, layout.Nodes, capacity.Value, cpu, family, layout.TensorParallel, layout.SequenceParallel);
                if (search.Chosen is null)
                    return DoesNotFit(stderr, $"no {family} layout on {layout.Gpus} GPUs fits {Gb(capacity.Value)} per GPU" + (cpu is null ? "" : $" and {Gb(cpu.Value)} CPU RAM per node"),
                        search.Ranked.Select(o => o.Ledger).ToList());
                ledger = search.Chosen.Ledger;
                stderr.WriteLine($"# layout chosen (least communication that fits): {ledger.Layout.Describe()}");
            }
            else
            {
                ledger = ParallelMemory.Plan(job, layout);
                if (capacity is not null && !ledger.FitsGpu(capacity.Value))
                    return DoesNotFit(stderr, $"{Gb(ledger.GpuPeakBytes)} per GPU exceeds {Gb(capacity.Value)}", [ledger]);
                if (!ledger.FitsCpu(cpu))
                    return DoesNotFit(stderr, $"{Gb(ledger.CpuBytesPerNode)} of CPU RAM per node exceeds --cpu-memory {Gb(cpu!.Value)}", [ledger]);
            }

            var run = new TrainingRun
            {
                Layout = ledger.Layout,
                DeepSpeed = ledger.DeepSpeed,
                MicroBatch = spec.MicroBatch,
                GradientAccumulation = p.GetValue(gradAccum),
                Precision = runPrecision,
                ActivationCheckpointing = spec.Checkpointing,
                AdaptersOnly = spec.Adaptation != AdaptationKind.Full,
                Model = arch.Name,
                Script = p.GetValue(script)!,
                MasterAddress = p.GetValue(masterAddr)!,
                MasterPort = p.GetValue(masterPort),
                PlannedGpuBytes = ledger.GpuPeakBytes,
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

    private static RunPrecision ParsePrecision(string text) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" => RunPrecision.Fp32,
        "amp-bf16" => RunPrecision.AmpBf16,
        "amp-fp16" => RunPrecision.AmpFp16,
        "bf16" => RunPrecision.PureBf16,
        "fp16" => RunPrecision.PureFp16,
        _ => throw new InputError("--precision", $"\"{text}\" is not a precision", "Use fp32, amp-bf16, amp-fp16, bf16 or fp16."),
    };

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
        err.WriteLine($"# per GPU ({ledger.Layout.Describe()}): peak {Gb(ledger.GpuPeakBytes)} in {ledger.GpuPeakPhase}");
        foreach (var line in ledger.Gpu)
            err.WriteLine($"#   {line.Name,-66} {Gb(line.Bytes),12}  [{line.Phase}] {line.Formula}");
        err.WriteLine($"# CPU RAM per node: {Gb(ledger.CpuBytesPerNode)}");
        foreach (var line in ledger.CpuPerNode)
            err.WriteLine($"#   {line.Name,-66} {Gb(line.Bytes),12}  [{line.Phase}] {line.Formula}");
    }

    private static string Gb(long bytes) => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB";
}
