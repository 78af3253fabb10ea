using Afinado.Planner.Tests.GpuBench;

namespace Afinado.Planner.Tests;

/// <summary>
/// Issue 14's reserved-memory rows of bench/gpu/grid.py (section 10), held on the CPU dry run before a GPU session
/// measures them: they come after every row the H100 already measured, each runs (or is skipped with its reason), rows
/// of another PYTORCH_CUDA_ALLOC_CONF run in a subprocess that appends to the same CSV and records the conf, long
/// decodes record their step count, and the allocator-snapshot summary passes its self-test.
/// </summary>
[Collection(GpuDryRunCollection.Name)]
public sealed class GpuScriptReservedRowsTests(FullDryRun dry)
{
    private static readonly string CommittedH100Csv = Path.Combine(GpuScript.RepoRoot, "bench", "ground-truth",
        "gpu-nvidia-h100-80gb-hbm3-2026-11-26.csv");

    private static IReadOnlyList<string> CommittedIds => GroundTruthCsv.Read(CommittedH100Csv).Rows.Select(r => r["row_id"]).ToList();

    private IReadOnlyList<IReadOnlyDictionary<string, string>> NewRows => dry.Result.Csv.Rows.Skip(CommittedIds.Count).ToList();

    [Fact]
    public void The_measured_rows_keep_their_ids_and_order_and_the_new_rows_come_after_them()
    {
        Assert.True(dry.Result.ExitCode == 0, dry.Result.Output);
        var ids = dry.Result.Csv.Rows.Select(r => r["row_id"]).ToList();
        Assert.Equal(80, CommittedIds.Count);
        Assert.Equal(CommittedIds, ids.Take(CommittedIds.Count));
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.True(NewRows.Count >= 13, $"{NewRows.Count} new rows");
        // --list prints the same grid in the same order (the CSV above is written in grid order, subprocess rows included).
        var list = GpuScript.Run("--list");
        Assert.Equal(ids, list.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public void Every_new_row_runs_on_cpu_or_is_skipped_with_its_reason()
    {
        Assert.All(NewRows, r =>
        {
            Assert.True(r["status"] is "ok" or "skipped", $"{r["row_id"]}: {r["status"]} {r["message"]}");
            if (r["status"] == "skipped") Assert.True(r["message"].Length > 20, r["row_id"]);
        });
        // transformers keeps no fp8 KV cache (QuantizedCache is int2/int4 via optimum-quanto or HQQ): said, not measured.
        var fp8 = Assert.Single(NewRows, r => r["kv_dtype"] == "fp8");
        Assert.Equal("skipped", fp8["status"]);
        Assert.Contains("fp8", fp8["message"]);
        // Section 12's families need transformers (GpuScriptFamilyRowsTests); of the rest only the fp8 row may be skipped.
        var builtIn = NewRows.Where(r => !r["message"].Contains("needs transformers", StringComparison.Ordinal)).ToList();
        Assert.True(builtIn.Count(r => r["status"] == "ok") >= builtIn.Count - 1, "only the fp8 row may be skipped on CPU");
        Assert.Contains(NewRows, r => r["model"] == "Qwen/Qwen2.5-0.5B" && r["status"] == "ok");
        Assert.Contains(NewRows, r => r["row_id"].StartsWith("smollm2-135m/train/full/amp-bf16/adamw/b16-s2048/", StringComparison.Ordinal));
    }

    [Fact]
    public void Rows_of_another_alloc_conf_run_in_one_subprocess_per_conf_and_record_it()
    {
        var rows = dry.Result.Csv.Rows;
        foreach (var r in rows)
        {
            string expected = r["row_id"].EndsWith("/alloc-expandable", StringComparison.Ordinal) ? "expandable_segments:True"
                : r["row_id"].EndsWith("/alloc-maxsplit128", StringComparison.Ordinal) ? "max_split_size_mb:128" : "";
            Assert.True(expected == r["alloc_conf"], $"{r["row_id"]}: alloc_conf '{r["alloc_conf"]}'");
        }
        Assert.Equal(6, rows.Count(r => r["alloc_conf"] == "expandable_segments:True" && r["status"] == "ok"));
        Assert.Equal(2, rows.Count(r => r["alloc_conf"] == "max_split_size_mb:128" && r["status"] == "ok"));
        // Expandable segments on vs off: every expandable row has its default-conf twin in the same grid.
        var ids = rows.Select(r => r["row_id"]).ToHashSet();
        Assert.All(rows.Where(r => r["alloc_conf"].Length > 0), r =>
            Assert.Contains(r["row_id"][..r["row_id"].LastIndexOf("/alloc-", StringComparison.Ordinal)], ids));
        var subprocesses = dry.Result.RunInfo.GetProperty("subprocesses").EnumerateArray().ToList();
        Assert.Equal(["expandable_segments:True", "max_split_size_mb:128"], subprocesses.Select(p => p.GetProperty("alloc_conf").GetString()));
        Assert.All(subprocesses, p =>
        {
            Assert.Equal(0, p.GetProperty("returncode").GetInt32());
            Assert.Equal(0, p.GetProperty("rows_lost").GetInt32());
        });
        // The subprocesses' configs are merged into configs-used.json, so every ok row's config_file resolves.
        Assert.All(rows.Where(r => r["status"] == "ok"), r => Assert.Contains(r["config_file"], dry.Result.ConfigsUsed.Keys));
        // On CPU the allocator cannot say whether segments are expandable, and no snapshot is written.
        Assert.All(rows, r => Assert.Equal("", r["alloc_expandable"]));
        Assert.All(rows, r => Assert.Equal("", r["snapshot_file"]));
        Assert.False(Directory.Exists(Path.Combine(dry.Result.OutDir, "snapshots")));
    }

    [Fact]
    public void Decode_rows_record_their_step_count_and_long_decodes_take_64()
    {
        var rows = dry.Result.Csv.Rows;
        Assert.All(rows.Where(r => r["phase"] != "decode"), r => Assert.Equal("", r["decode_steps"]));
        Assert.All(rows.Where(r => r["phase"] == "decode"), r =>
            Assert.Equal(r["row_id"].Contains("/steps64", StringComparison.Ordinal) ? "64" : "2", r["decode_steps"]));
        Assert.Equal(4, rows.Count(r => r["decode_steps"] == "64" && r["status"] == "ok"));
        Assert.All(CommittedIds, id => Assert.DoesNotContain("/steps", id));
    }

    [Fact]
    public void A_subprocess_that_dies_keeps_its_finished_rows_and_the_rest_become_errors()
    {
        var run = GpuScript.Run("--dry-run", "--only", "/alloc-expandable$", "--inject-crash", "^llama3.2-1b/prefill/.*/alloc-expandable$");
        Assert.True(run.ExitCode == 0, run.Output);
        var rows = run.Csv.Rows;
        Assert.Equal(6, rows.Count);
        Assert.Equal(["ok", "ok", "ok", "error", "error", "error"], rows.Select(r => r["status"]));
        Assert.All(rows.Skip(3), r =>
        {
            Assert.Contains("exit code 3", r["message"]);
            Assert.Equal("expandable_segments:True", r["alloc_conf"]);
        });
        var subprocess = Assert.Single(run.RunInfo.GetProperty("subprocesses").EnumerateArray());
        Assert.Equal(3, subprocess.GetProperty("rows_lost").GetInt32());
    }

    [Fact]
    public void The_allocator_snapshot_summary_passes_its_self_test()
    {
        var (exitCode, output) = GpuScript.RunScript("selftest_snapshot.py");
        Assert.True(exitCode == 0, output);
        Assert.Contains("selftest_snapshot: ok", output);
    }
}
