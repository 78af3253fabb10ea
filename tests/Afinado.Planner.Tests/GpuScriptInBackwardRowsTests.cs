using Afinado.Planner.Tests.GpuBench;
using Afinado.Planner.Validation;

namespace Afinado.Planner.Tests;

/// <summary>
/// The optimizer-in-backward rows of bench/gpu/grid.py (section 11), held on the CPU dry run before a GPU session
/// measures them: they come after every measured row, each has its twin without the hook earlier in the grid, every parameter is stepped
/// once by its hook per backward (jobs.py raises otherwise, which would make the row an error), and the column reaches
/// the planner's job when the rows are validated.
/// </summary>
[Collection(GpuDryRunCollection.Name)]
public sealed class GpuScriptInBackwardRowsTests(FullDryRun dry)
{
    private const string Suffix = "/opt-in-bwd";

    [Fact]
    public void The_rows_come_after_the_measured_ones_run_on_cpu_with_each_hook_stepping_once_and_have_their_twins()
    {
        Assert.True(dry.Result.ExitCode == 0, dry.Result.Output);
        var rows = dry.Result.Csv.Rows;
        var inBackward = rows.Where(r => r["row_id"].EndsWith(Suffix, StringComparison.Ordinal)).ToList();
        Assert.Equal(4, inBackward.Count);
        // One run, after every row the H100 measured (section 12's families follow it).
        Assert.Equal(inBackward, rows.SkipWhile(r => !r["row_id"].EndsWith(Suffix, StringComparison.Ordinal)).Take(4));
        Assert.DoesNotContain(inBackward[0], rows.Take(80));
        var ids = rows.Select(r => r["row_id"]).ToHashSet();
        Assert.All(inBackward, r =>
        {
            Assert.True(r["status"] == "ok", $"{r["row_id"]}: {r["status"]} {r["message"]}");
            Assert.Equal("true", r["optimizer_in_backward"]);
            Assert.EndsWith("+in-backward", r["optimizer_impl"]);
            Assert.Contains(r["row_id"][..^Suffix.Length], ids);
        });
        Assert.All(rows.Where(r => r["task"] == "train" && !r["row_id"].EndsWith(Suffix, StringComparison.Ordinal)),
            r => Assert.Equal("false", r["optimizer_in_backward"]));
        Assert.All(rows.Where(r => r["task"] == "infer"), r => Assert.Equal("", r["optimizer_in_backward"]));
    }

    [Fact]
    public void A_measured_row_with_the_column_is_predicted_with_the_step_in_backward()
    {
        // The committed H100 row of the 4-layer Llama-3.1-8B in pure bf16, as its in-backward twin would read.
        string csv = Path.Combine(GpuScript.RepoRoot, "bench", "ground-truth", "gpu-nvidia-h100-80gb-hbm3-2026-11-26.csv");
        var row = GroundTruthCsv.Read(csv).Rows.Single(r => r["row_id"] == "llama3.1-8b@L4/train/full/bf16/adamw/b1-s2048/sdpa/ckpt-none")
            .ToDictionary(p => p.Key, p => p.Value);
        double? after = MeasuredGpuRows.Map(row, 0.08).PredictedBytes;
        row["optimizer_in_backward"] = "true";
        double? inBackward = MeasuredGpuRows.Map(row, 0.08).PredictedBytes;
        // Every bf16 gradient of the 1.5 B parameters is live at the step after backward; one at a time in backward.
        Assert.True(after - inBackward > 1e9, $"{after:N0} vs {inBackward:N0}");
    }
}
