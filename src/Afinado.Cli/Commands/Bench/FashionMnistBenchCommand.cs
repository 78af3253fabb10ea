using Afinado.Planner.Memory;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Training.LearningRules.Bench;
using Afinado.Training.Memory;

namespace Afinado.Cli.Commands.Bench;

/// <summary>
/// <c>afinado bench fashion-mnist</c>: BP, DFA, ES and Guided ES on one MLP, BP and DFA on LeNet-5. Each row runs in its
/// own child process started with MALLOC_MMAP_THRESHOLD_=131072, so its VmHWM is the peak of that row alone.
/// </summary>
public static class FashionMnistBenchCommand
{
    public const string Schema = "afinado.bench.fashion-mnist/1";

    // NaN/Infinity (a diverged row) are written as null, so a bad row cannot crash the table after hours of runs.
    private static readonly JsonSerializerOptions FileJson = FiniteJson.AddTo(new() { WriteIndented = true });
    private static readonly JsonSerializerOptions LineJson = FiniteJson.AddTo(new());

    public static Command Build()
    {
        var runs = new Option<string>("--runs") { Description = "Comma-separated rows to run.", DefaultValueFactory = _ => string.Join(",", FashionMnistPresets.All.Select(s => s.Id)) };
        var steps = new Option<int?>("--steps") { Description = "Override every row's step budget (smoke runs)." };
        var outDir = new Option<string>("--out") { Description = "Folder for fashion-mnist.json and fashion-mnist.md.", DefaultValueFactory = _ => "runs/bench/fashion-mnist" };
        var data = new Option<string>("--data") { Description = "Folder with the Fashion-MNIST IDX .gz files.", DefaultValueFactory = _ => Afinado.Training.Data.FashionMnist.DefaultDir };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON (progress goes to stderr)." };
        var memorySteps = new Option<int>("--memory-steps") { Description = "Steps of the separate peak-memory run of each row (child process, MALLOC_MMAP_THRESHOLD_=131072); 0 skips it.", DefaultValueFactory = _ => 20 };
        var memoryOnly = new Option<bool>("--memory-only") { Description = "Skip the full training runs; measure only peak memory (accuracy then comes from the short run)." };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads per row (1 avoids spin-wait losses on a loaded machine).", DefaultValueFactory = _ => 1 };
        var child = new Option<bool>("--child") { Description = "Internal: run exactly one row and print its JSON result.", Hidden = true };
        var cmd = new Command("fashion-mnist", "Train and measure BP, DFA, ES and Guided ES on Fashion-MNIST (accuracy, time, passes, peak memory).");
        foreach (var o in new Option[] { runs, steps, outDir, data, json, memorySteps, memoryOnly, threads, child }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            var ids = parse.GetValue(runs)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var specs = ids.Select(FashionMnistPresets.Find).ToList();
            int? stepOverride = parse.GetValue(steps);
            InputRange.Whole("--steps", stepOverride, 1, 100_000_000, "or leave it out for the preset budgets");
            InputRange.Whole("--memory-steps", parse.GetValue(memorySteps), 0, 100_000_000, "0 skips the memory run");
            if (!parse.GetValue(child)) OutputPaths.Folder("--out", parse.GetValue(outDir)!);
            if (stepOverride is int s) specs = specs.Select(x => x with { Steps = s }).ToList();
            var progress = new ProgressLines(parse.InvocationConfiguration.Error);
            var dataDir = parse.GetValue(data)!;
            int threadCount = InputRange.Whole("--threads", parse.GetValue(threads), 1, Environment.ProcessorCount, $"this machine has {Environment.ProcessorCount} cores");
            TorchSharp.torch.set_num_threads(threadCount);

            if (parse.GetValue(child))
            {
                if (specs.Count != 1) throw new InputError("--runs", "a child runs exactly one row", "Pass one row id.");
                var result = RunInProcess(specs[0], dataDir, progress);
                parse.InvocationConfiguration.Output.WriteLine(JsonSerializer.Serialize(result, LineJson));
                return CliApp.ExitOk;
            }

            var results = new List<FashionMnistRunResult>();
            foreach (var spec in specs)
            {
                progress.Report(spec.Id, $"{spec.Rule.Name()} on {spec.Network}, {spec.Steps} steps");
                // Accuracy and time come from a full run in this process with the default allocator (the tamed one costs up
                // to 10× in page faults here); peak memory from a short run of the same row in a tamed child process.
                int memSteps = parse.GetValue(memorySteps);
                if (parse.GetValue(memoryOnly))
                {
                    if (memSteps < 1) throw new InputError("--memory-steps", "--memory-only needs a memory run", "Pass --memory-steps 1 or more.");
                    results.Add(RunChild(spec, dataDir, Math.Min(memSteps, spec.Steps), threadCount, parse.InvocationConfiguration.Error));
                    continue;
                }
                var r = RunInProcess(spec, dataDir, progress);
                if (memSteps > 0)
                {
                    var m = RunChild(spec, dataDir, Math.Min(memSteps, spec.Steps), threadCount, parse.InvocationConfiguration.Error);
                    r = r with { BaselineRssBytes = m.BaselineRssBytes, PeakRssBytes = m.PeakRssBytes, MallocTamed = m.MallocTamed, MemorySteps = m.Steps };
                }
                else r = r with { BaselineRssBytes = 0, PeakRssBytes = 0, MallocTamed = false };
                results.Add(r);
                progress.Report(spec.Id, $"test accuracy {r.TestAccuracy:P2}, {r.TrainSeconds:F0} s, peak +{r.PeakAboveBaselineBytes / 1048576.0:F0} MiB");
            }

            var dir = parse.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            var doc = new Dictionary<string, object> { ["schema"] = Schema, ["machine"] = $"{Environment.ProcessorCount} cores, shared with other jobs", ["threads"] = threadCount, ["rows"] = results };
            var text = JsonSerializer.Serialize(doc, FileJson);
            File.WriteAllText(Path.Combine(dir, "fashion-mnist.json"), text);
            var table = MarkdownTable(results);
            File.WriteAllText(Path.Combine(dir, "fashion-mnist.md"), table);
            parse.InvocationConfiguration.Output.WriteLine(parse.GetValue(json) ? text : table);
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static FashionMnistRunResult RunInProcess(FashionMnistRunSpec spec, string dataDir, ProgressLines progress)
    {
        var (trX, trY) = Afinado.Training.Data.FashionMnist.Load(train: true, dataDir, "--data");
        var (teX, teY) = Afinado.Training.Data.FashionMnist.Load(train: false, dataDir, "--data");
        using (trX) using (trY) using (teX) using (teY)
            return FashionMnistBench.Run(spec, new FashionMnistBench.Data(trX, trY, teX, teY), new Progress<string>(m => progress.Report("train", m)));
    }

    /// <summary>Re-runs this executable with <c>--child</c> under the tamed allocator and parses its JSON line.</summary>
    private static FashionMnistRunResult RunChild(FashionMnistRunSpec spec, string dataDir, int? steps, int threads, TextWriter stderr)
    {
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot locate the afinado executable");
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet") psi.ArgumentList.Add(typeof(CliApp).Assembly.Location);
        foreach (var a in new[] { "bench", "fashion-mnist", "--child", "--runs", spec.Id, "--data", dataDir, "--threads", threads.ToString() }) psi.ArgumentList.Add(a);
        if (steps is int s) { psi.ArgumentList.Add("--steps"); psi.ArgumentList.Add(s.ToString()); }
        psi.Environment[ProcessMemory.MmapThresholdVariable] = ProcessMemory.MmapThresholdValue;
        using var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) stderr.WriteLine(e.Data); };
        p.BeginErrorReadLine();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"benchmark row {spec.Id} failed with exit code {p.ExitCode}");
        var line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        return JsonSerializer.Deserialize<FashionMnistRunResult>(line, LineJson) ?? throw new InvalidOperationException($"row {spec.Id} printed no result");
    }

    private static string MarkdownTable(IReadOnlyList<FashionMnistRunResult> rows)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("| row | network | rule | params | steps × batch | test acc | train s | forward passes | backward passes | peak above baseline (MiB) | RuleMemory predicted (MiB) | target |");
        sb.AppendLine("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Spec.Id} | {r.Spec.Network} | {r.Spec.Rule.Name()}{(r.Spec.Rule == LearningRule.GuidedEs ? $" ({r.Spec.Surrogate})" : "")} | {r.Parameters:N0} | {r.Steps} × {r.Spec.BatchSize} | {r.TestAccuracy:P2} | {r.TrainSeconds:F0} | {r.ForwardPasses:N0} | {r.BackwardPasses:N0} | {(r.MallocTamed ? (r.PeakAboveBaselineBytes / 1048576.0).ToString("F1") : "n/a")} | {(r.PredictedPeakBytes > 0 ? (r.PredictedPeakBytes / 1048576.0).ToString("F1") : "")} | {r.Spec.Target} |");
        return sb.ToString();
    }
}
