namespace Afinado.Cli.Tests;

public sealed class EvalAndReportCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-evalcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private string RunDir(string name, char baseHash, string? manifestText = null)
    {
        var dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(dir);
        var manifest = $$"""
            {"schema": "afinado.manifest/1",
             "base_weights": [{"path": "base-{{baseHash}}", "sha256": "{{new string(baseHash, 64)}}", "bytes": 10}],
             "data_files": [], "data_sha256": "{{new string('e', 64)}}", "config_sha256": "{{new string('d', 64)}}", "code_version": "abc1234", "seed": 1,
             "created_utc": "2026-11-26T00:00:00Z"}
            """;
        File.WriteAllText(Path.Combine(dir, "manifest.json"), manifestText ?? manifest);
        File.WriteAllText(Path.Combine(dir, "summary.json"), """
            {"schema": "afinado.run/1", "status": "completed", "method": "lora", "rule": "backprop", "max_steps": 3, "forward_passes": 3, "train_positions": 300,
             "total_parameters": 1000, "trainable_parameters": 100, "steps": 3, "wall_seconds": 1.5,
             "manifest": MANIFEST,
             "planned_peak_bytes": 2000000, "measured_peak_bytes": 2500000,
             "loss_curve": [{"step": 1, "train_loss": 2.0}, {"step": 2, "train_loss": 1.5, "validation_loss": 1.7}, {"step": 3, "train_loss": 1.2}],
             "planned_breakdown": {"weights": 4000, "gradients": 400}, "measured_breakdown": {"weights": 4000}}
            """.Replace("MANIFEST", manifest));
        return dir;
    }

    [Fact]
    public async Task Report_on_a_missing_run_dir_is_bad_input()
    {
        var (code, _, err) = await Run("report", Path.Combine(_dir, "nope"), "--out", Path.Combine(_dir, "r"));
        Assert.Equal(2, code);
        Assert.Contains("does not exist", err);
    }

    [Fact]
    public async Task Report_on_a_corrupt_manifest_is_bad_input_naming_the_file()
    {
        var dir = RunDir("corrupt", 'a', "{\"schema\": \"afinado.manifest/1\", \"base_weights\": {\"name\": \"x\"");
        var (code, _, err) = await Run("report", dir, "--out", Path.Combine(_dir, "r"));
        Assert.Equal(2, code);
        Assert.Contains("manifest.json", err);
        Assert.Contains("corrupt", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public async Task Report_refuses_different_bases_without_the_flag_and_flags_them_with_it()
    {
        var a = RunDir("a", 'a');
        var b = RunDir("b", 'b');
        var refused = await Run("report", a, b, "--out", Path.Combine(_dir, "r1"));
        Assert.Equal(2, refused.Code);
        Assert.Contains("--allow-different-base", refused.Err);
        var allowed = await Run("report", a, b, "--out", Path.Combine(_dir, "r2"), "--allow-different-base");
        Assert.Equal(0, allowed.Code);
        Assert.Contains("DIFFERENT BASE", allowed.Err);
        Assert.Contains("DIFFERENT BASE", File.ReadAllText(Path.Combine(_dir, "r2", "report.html")));
        Assert.True(File.Exists(Path.Combine(_dir, "r2", "figures", "loss-curves.png")));
        Assert.True(File.Exists(Path.Combine(_dir, "r2", "figures", "memory-a.svg")));
    }

    [Fact]
    public async Task Eval_refuses_a_base_model_given_only_by_a_mutable_name()
    {
        var (code, _, err) = await Run("eval", "--out", Path.Combine(_dir, "e"), "--base-model", "meta-llama/Llama-3.1-8B");
        Assert.Equal(2, code);
        Assert.Contains("mutable name", err);
        Assert.Contains("--base-model-sha256", err);
    }

    [Fact]
    public async Task Eval_rejects_out_of_range_sizes_before_doing_any_work()
    {
        var (code, _, err) = await Run("eval", "--out", Path.Combine(_dir, "e"), "--train-per-class", "0");
        Assert.Equal(2, code);
        Assert.Contains("--train-per-class", err);
    }
}

public sealed class EvalScaleModelTests
{
    [Fact]
    public async Task An_unknown_scale_model_is_bad_input_before_any_training()
    {
        var e = new StringWriter();
        var code = await CliApp.RunAsync(["eval", "--experiment", "fortunes", "--scale-model", "no/such-model", "--out", Path.Combine(Path.GetTempPath(), "afinado-never")], new StringWriter(), e);
        Assert.Equal(2, code);
        Assert.Contains("no/such-model", e.ToString());
        Assert.False(Directory.Exists(Path.Combine(Path.GetTempPath(), "afinado-never")));
    }
}
