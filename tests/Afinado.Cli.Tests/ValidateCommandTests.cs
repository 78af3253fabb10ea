using System.Text.Json;
using Afinado.Cli.Validation;
using Afinado.Planner.Validation;

namespace Afinado.Cli.Tests;

/// <summary>
/// <c>afinado validate</c> end to end: the planner's harness (<see cref="GroundTruth"/>) reading plan_args with the CLI's
/// flags (<see cref="PlanArgsFlags"/>). The harness's own logic is tested in Afinado.Planner.Tests/Validation.
/// </summary>
public class ValidateCommandTests
{
    private static string Dir => GroundTruth.FindDirectory(null);

    [Fact]
    public void Every_in_scope_published_row_is_within_its_tolerance()
    {
        var published = GroundTruth.Validate(Dir, PlanArgsFlags.Parse).Single(s => s.Name == "published");
        var asserted = published.Rows.Where(r => r.Asserted).ToList();
        Assert.True(asserted.Count >= 20);
        foreach (var r in asserted)
        {
            Assert.NotNull(r.PredictedBytes);
            Assert.True(r.WithinTolerance, $"{r.Id}: predicted {r.PredictedBytes:N0}, measured {r.MeasuredBytes:N0}, error {r.RelativeError:P1} > {r.Tolerance:P0}");
        }
        // Targets from issue 2: median ≤ 10 %, worst ≤ 25 % over asserted rows.
        Assert.True(published.MedianAbsError <= 0.10, $"median {published.MedianAbsError:P1}");
        Assert.True(published.WorstAbsError <= 0.25, $"worst {published.WorstAbsError:P1}");
    }

    [Fact]
    public void Every_committed_gpu_measurement_meets_issue_7s_targets()
    {
        // Allocated peaks: the measure.py grid's source, and the allocated rows of gpu-rules-measured.csv (whose reserved
        // rows are issue 14's, below).
        var sources = GroundTruth.Validate(Dir, PlanArgsFlags.Parse).Where(s => s.Name.StartsWith("gpu-", StringComparison.Ordinal)
            && s.Rows.Any(r => r.Metric == "allocated")).ToList();
        Assert.NotEmpty(sources);
        foreach (var source in sources)
        {
            var gpu = OfMetric(source, "allocated");
            var asserted = gpu.Rows.Where(r => r.Asserted).ToList();
            // The measure.py grid has ~80 rows; gpu-rules-measured.csv (measure_rules.py, learning-rule peaks) has a handful.
            int minimum = gpu.Name.StartsWith("gpu-rules", StringComparison.Ordinal) ? 4 : 70;
            Assert.True(asserted.Count >= minimum, $"{gpu.Name}: {asserted.Count} asserted rows");
            foreach (var r in asserted)
                Assert.True(r.WithinTolerance, $"{r.Id}: predicted {r.PredictedBytes:N0}, measured {r.MeasuredBytes:N0}, error {r.RelativeError:P1} > {r.Tolerance:P0}");
            // Issue 7: median ≤ 3 %, worst ≤ 8 % on allocated peak.
            Assert.True(gpu.MedianAbsError <= 0.03, $"{gpu.Name}: median {gpu.MedianAbsError:P1}");
            Assert.True(gpu.WorstAbsError <= 0.08, $"{gpu.Name}: worst {gpu.WorstAbsError:P1}");
            // A measured OOM must be an OOM verdict too.
            Assert.All(source.Rows.Where(r => r.Scope == "oom"), r => Assert.Contains("agrees (OOM)", r.Note));
        }
    }

    /// <summary>The source's rows of one metric, summarised as a source of their own.</summary>
    private static ValidationSource OfMetric(ValidationSource s, string metric) => s with { Rows = s.Rows.Where(r => r.Metric == metric).ToList() };

    /// <summary>ES steps are replayed (DecoderTrace.Es.cs): their reserved peaks, measured by bench/gpu/measure_rules.py,
    /// meet issue 14's reserved targets. The 5 % reserve they had before missed the full-finetuning ES + AdamW row by −26 %.</summary>
    [Fact]
    public void The_replayed_es_steps_meet_issue_14s_reserved_targets()
    {
        var rules = GroundTruth.Validate(Dir, PlanArgsFlags.Parse).Single(s => s.Name == "gpu-rules-measured");
        var reserved = OfMetric(rules, "reserved");
        var asserted = reserved.Rows.Where(r => r.Asserted).ToList();
        Assert.True(asserted.Count >= 6, $"{asserted.Count} reserved rows");
        Assert.All(asserted, r => Assert.True(r.WithinTolerance && r.RelativeError >= -0.05, $"{r.Id}: {r.RelativeError:P1}"));
        Assert.True(reserved.MedianAbsError <= 0.03, $"median {reserved.MedianAbsError:P1}");
    }

    [Fact]
    public void The_allocator_replay_meets_issue_14s_targets_on_every_committed_gpu_measurement()
    {
        var all = GroundTruth.Validate(Dir, PlanArgsFlags.Parse);
        int measureFiles = Directory.GetFiles(Dir, "gpu-*.csv").Count(f => File.ReadLines(f).Skip(1).FirstOrDefault()?.StartsWith("afinado.gpu-ground-truth/1,", StringComparison.Ordinal) == true);
        var sources = all.Where(s => s.Rows.Count > 0 && s.Rows.All(r => r.Metric is "reserved" or "nvml")).ToList();
        Assert.Equal(2 * measureFiles, sources.Count);
        foreach (var s in sources)
        {
            var asserted = s.Rows.Where(r => r.Asserted).ToList();
            Assert.True(asserted.Count >= 70, $"{s.Name}: {asserted.Count} asserted rows");
            Assert.All(asserted, r => Assert.True(r.WithinTolerance, $"{r.Id}: {r.RelativeError:P1}"));
            // Issue 14: median ≤ 3 %, worst ≤ 10 %, and never below −5 % (the side where the plan says "fits" and the GPU says OOM).
            Assert.True(s.MedianAbsError <= 0.03, $"{s.Name}: median {s.MedianAbsError:P1}");
            Assert.True(s.WorstAbsError <= 0.10, $"{s.Name}: worst {s.WorstAbsError:P1}");
            Assert.All(asserted, r => Assert.True(r.RelativeError >= -0.05, $"{s.Name} {r.Id}: {r.RelativeError:P1} is on the unsafe side"));
            // Rows left unasserted are few, named with their reason, and still predicted.
            var unmet = s.Rows.Where(r => r.Scope == "unmet").ToList();
            Assert.True(unmet.Count <= 3, $"{s.Name}: {unmet.Count} unmet rows");
            Assert.All(unmet, r => Assert.True(r.PredictedBytes > 0 && r.Note.Length > 40, r.Id));
        }
    }

    [Theory]
    [InlineData(0.0123, "+1.2%")]
    [InlineData(-0.0041, "-0.4%")]
    [InlineData(-0.00004, "0.0%")]
    [InlineData(0.00004, "0.0%")]
    public void Errors_print_with_one_sign(double error, string expected) =>
        Assert.Equal(expected, Afinado.Cli.Commands.ValidateCommand.SignedPercent(error));

    [Fact]
    public async Task Validate_json_reports_median_and_worst()
    {
        var o = new StringWriter();
        int code = await CliApp.RunAsync(["validate", "--json"], o, new StringWriter());
        Assert.Equal(CliApp.ExitOk, code);
        using var doc = JsonDocument.Parse(o.ToString());
        Assert.Equal("afinado.validate/1", doc.RootElement.GetProperty("schema").GetString());
        var published = doc.RootElement.GetProperty("sources")[0];
        Assert.Equal("published", published.GetProperty("name").GetString());
        Assert.True(published.GetProperty("median_abs_error").GetDouble() <= 0.10);
        Assert.True(published.GetProperty("worst_abs_error").GetDouble() <= 0.25);
    }

    [Fact]
    public void Cpu_and_gpu_measurement_files_are_read_when_present()
    {
        var dir = Directory.CreateTempSubdirectory("afinado-gt");
        try
        {
            File.Copy(Path.Combine(Dir, "published.csv"), Path.Combine(dir.FullName, "published.csv"));
            Directory.CreateDirectory(Path.Combine(dir.FullName, "configs"));
            File.Copy(Path.Combine(Dir, "configs", "kipply-52b.json"), Path.Combine(dir.FullName, "configs", "kipply-52b.json"));
            File.WriteAllText(Path.Combine(dir.FullName, "cpu-test.csv"),
                "id,plan_args,metric,measured_bytes,tolerance,device,command,note\n" +
                "tiny,--model meta-llama/Llama-3.2-3B --device cpu --precision fp32 --method lora --seq 16,rss-growth,1000,0.08,cpu,none,synthetic\n");
            var sources = GroundTruth.Validate(dir.FullName, PlanArgsFlags.Parse);
            var cpu = Assert.Single(sources, s => s.Name == "cpu-test");
            var row = Assert.Single(cpu.Rows);
            Assert.Equal("cpu", row.Scope);
            Assert.True(row.PredictedBytes > 1e9);
            Assert.False(row.WithinTolerance);
        }
        finally { dir.Delete(recursive: true); }
    }
}
