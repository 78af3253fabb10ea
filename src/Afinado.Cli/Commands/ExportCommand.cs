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
            var fmt = EngineExport.ParseFormat(p.GetValue(format)!);
            if (p.GetValue(output) is { } outFile) OutputPaths.File("--out", outFile);
            var arch = ModelSource.Resolve(p.GetValue(planOptions.Model)!);
            var job = planOptions.Job(p);
            // Only GPUs the user names are checked (plan's default list of common GPUs is not a target here).
            bool devicesGiven = (p.GetValue(planOptions.Gpu) ?? []).Length > 0 || (p.GetValue(planOptions.GpuMemory) ?? []).Length > 0;
            var devices = devicesGiven ? planOptions.Devices(p) : [];
            var result = EngineExport.Create(arch, job, fmt, ParallelPlanning.Request(p, parallel), devices,
                new LaunchSettings(p.GetValue(script)!, p.GetValue(masterAddr)!, p.GetValue(masterPort)));
            if (result.DoesNotFit is { } why) return DoesNotFit(stderr, why, result.Tried);
            foreach (var note in result.Notes) stderr.WriteLine($"# {note}");
            var ledger = result.Ledger;
            var file = result.File!;

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
                if (fmt == ExportFormat.DeepSpeed) foreach (var a in file.Assumptions) stderr.WriteLine($"# {a}");
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static int DoesNotFit(TextWriter err, InputText why, IReadOnlyList<ParallelLedger> alternatives)
    {
        err.WriteLine($"does not fit: {why.Render(CliFlags.Of)}.");
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

    private static readonly Phase[] CodedMoments = [.. Phases.StepMomentsWithVisionTower, Phase.ModelLoad];

    /// <summary>The moments as these comment lines have always printed them: identifiers, the whole step "Always", forward
    /// through backward "Backward" (scripts may read them, so the parallel table's prose wording is not used).</summary>
    private static string Code(Phase moments) => moments switch
    {
        // The vision tower runs inside the forward: a line held through the whole forward is coded without it.
        _ when (moments & Phase.ForwardAndBackward) == Phase.ForwardAndBackward && (moments & Phase.VisionTower) != 0 => Code(moments & ~Phase.VisionTower),
        Phase.Step => "Always",
        Phase.ForwardAndBackward => "Backward",
        Phase.None => "None",
        _ => string.Join(", ", CodedMoments.Where(m => (moments & m) != 0).Select(m => m.ToString())),
    };

    private static string Gb(long bytes) => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB";
}
