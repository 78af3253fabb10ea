using System.Diagnostics;
using Afinado.Cli.Validation;
using Afinado.Planner.Validation;

namespace Afinado.Cli.Tests;

/// <summary>
/// bench/gpu/probe_fsdp1_offload.py (issue 6's open row) measures rank 0 of a 2-rank FSDP1 run on one GPU; its results
/// are only useful if every job has a planner counterpart. These tests keep the script's printed plan_args parseable
/// by `afinado plan` and the counterpart's predictions ordered the way the layouts are (offload below no offload,
/// QLoRA below LoRA), so a renamed flag or a moved config breaks here, not on the device.
/// </summary>
public class Fsdp1ProbeTests
{
    private static string RepoRoot => Path.GetFullPath(Path.Combine(GroundTruth.FindDirectory(null), "..", ".."));

    private static Dictionary<string, string> PlanArgsByJob()
    {
        var psi = new ProcessStartInfo("/usr/bin/python3", ["bench/gpu/probe_fsdp1_offload.py", "--print-plan-args"])
        {
            WorkingDirectory = RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('\t')).ToDictionary(f => f[0], f => f[1]);
    }

    [Fact]
    public void Every_probe_job_has_a_planner_counterpart_ordered_like_its_layout()
    {
        var jobs = PlanArgsByJob();
        Assert.Equal(["lora-offload", "lora-no-offload", "qlora-offload", "qlora-no-offload"], jobs.Keys);
        double Predict(string job) => GroundTruth.Predict(jobs[job], "allocated", RepoRoot, "probe:" + job, PlanArgsFlags.Parse);
        var bytes = jobs.Keys.ToDictionary(j => j, Predict);
        Assert.All(bytes.Values, b => Assert.InRange(b, 2e9, 40e9));
        Assert.True(bytes["lora-offload"] < bytes["lora-no-offload"]);
        Assert.True(bytes["qlora-offload"] < bytes["qlora-no-offload"]);
        Assert.True(bytes["qlora-no-offload"] < bytes["lora-no-offload"]);
    }
}
