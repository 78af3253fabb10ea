namespace Afinado.Cli.Tests;

/// <summary>
/// Numeric flags and output paths of eval, calibration, report, export and bench are checked before any work: exit 2
/// naming the flag. Each case adds a second, later problem (a missing file) so the flag check is shown to come first.
/// </summary>
public sealed class CommandFlagValidationTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("afinado-flags-");

    public void Dispose() => _dir.Delete(true);

    private string Missing => Path.Combine(_dir.FullName, "missing");

    private string AFile()
    {
        var path = Path.Combine(_dir.FullName, "taken.txt");
        File.WriteAllText(path, "x");
        return path;
    }

    private static async Task AssertBadInput(string flag, string problem, params string[] args)
    {
        var (code, _, err) = await CliRun.Run(args);
        Assert.True(code == CliApp.ExitBadInput, err);
        Assert.StartsWith($"error: {flag}: ", err);
        Assert.Contains(problem, err);
    }

    [Fact]
    public Task Eval_scale_tflops_nan() =>
        AssertBadInput("--scale-tflops", "NaN is not a finite number",
            "eval", "--experiment", "fortunes", "--scale-tflops", "NaN", "--base-model", Missing, "--out", Path.Combine(_dir.FullName, "ev"));

    [Fact]
    public Task Eval_out_naming_a_file() =>
        AssertBadInput("--out", "is an existing file", "eval", "--run", Missing, "--out", AFile());

    [Fact]
    public Task Report_out_naming_a_file() =>
        AssertBadInput("--out", "is an existing file", "report", Missing, "--out", AFile());

    [Fact]
    public Task Calibration_plot_naming_a_folder() =>
        AssertBadInput("--plot", "is a folder", "calibration", Missing, "--plot", _dir.FullName);

    [Fact]
    public Task Export_master_port_out_of_range() =>
        AssertBadInput("--master-port", "0 is outside 1–65535", "export", "deepspeed", "--master-port", "0");

    [Fact]
    public Task Bench_memory_steps_negative() =>
        AssertBadInput("--memory-steps", "-1 is outside 0–", "bench", "fashion-mnist", "--runs", "mlp-bp", "--memory-steps", "-1", "--data", Missing);

    [Fact]
    public Task Bench_threads_beyond_the_cores() =>
        AssertBadInput("--threads", "1000 is outside 1–", "bench", "fashion-mnist", "--runs", "mlp-bp", "--threads", "1000", "--data", Missing);

    [Fact]
    public Task Bench_out_naming_a_file() =>
        AssertBadInput("--out", "is an existing file", "bench", "guided-es-toy", "--steps", "1", "--out", AFile());
}
