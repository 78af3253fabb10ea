namespace Afinado.Cli.Tests;

/// <summary>
/// Every numeric flag of train/pretrain is checked before any work starts: a NaN, an infinity or a value out of range
/// is exit 2 with a line naming the flag and the accepted range, and no run folder appears.
/// </summary>
public sealed class TrainFlagValidationTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("afinado-trainflags-");

    public void Dispose() => _dir.Delete(true);

    [Theory]
    [InlineData("--lr", "Infinity", "not a finite number")]
    [InlineData("--lr", "1e30", "1E+30 is outside (0, 1E+15]")]
    [InlineData("--weight-decay", "NaN", "not a finite number")]
    [InlineData("--weight-decay", "-1", "outside [0, 10]")]
    [InlineData("--es-sigma", "NaN", "not a finite number")]
    [InlineData("--eval-batches", "0", "outside 1–1000000")]
    [InlineData("--eval-batches", "-1", "outside 1–1000000")]
    [InlineData("--min-lr", "-1", "outside [0,")]
    [InlineData("--momentum", "5", "outside [0, 1)")]
    [InlineData("--warmup", "-5", "outside 0–")]
    [InlineData("--clip-norm", "NaN", "not a finite number")]
    [InlineData("--checkpoint-every", "-1", "outside 0–")]
    [InlineData("--eval-every", "-1", "outside 0–")]
    [InlineData("--threads", "1000", "outside 1–")]
    [InlineData("--lora-alpha", "NaN", "not a finite number")]
    [InlineData("--lora-dropout", "1", "outside [0, 1)")]
    public async Task Bad_numeric_flag_is_bad_input_naming_the_flag_before_any_work(string flag, string value, string problem)
    {
        var outDir = Path.Combine(_dir.FullName, "run");
        var (code, _, err) = await CliRun.Run("train", "--recipe", "fortunes-es", flag, value, "--out", outDir);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith($"error: {flag}: ", err);
        Assert.Contains(problem, err);
        Assert.DoesNotContain("   at ", err);
        Assert.False(Directory.Exists(outDir), "nothing may be written for a rejected flag");
    }

    [Fact]
    public async Task Pretrain_checks_the_same_flags()
    {
        var (code, _, err) = await CliRun.Run("pretrain", "--lr", "NaN", "--out", Path.Combine(_dir.FullName, "base"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith("error: --lr: NaN is not a finite number", err);
    }

    [Fact]
    public async Task Seq_beyond_the_models_positions_is_bad_input()
    {
        var (code, _, err) = await CliRun.Run("train", "--recipe", "fortunes-es", "--seq", "100000", "--threads", "1", "--out", Path.Combine(_dir.FullName, "run"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("error: --seq: 100000 is beyond the model's max_position_embeddings", err);
        Assert.False(Directory.Exists(Path.Combine(_dir.FullName, "run")));
    }

    [Fact]
    public async Task Out_naming_an_existing_file_is_bad_input()
    {
        var file = Path.Combine(_dir.FullName, "taken.txt");
        File.WriteAllText(file, "not a folder");
        var (code, _, err) = await CliRun.Run("train", "--recipe", "fortunes-es", "--out", file);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith("error: --out: ", err);
        Assert.Contains("is an existing file", err);
        Assert.Equal("not a folder", File.ReadAllText(file));
    }

    [Fact]
    public async Task Out_below_a_file_is_bad_input()
    {
        var file = Path.Combine(_dir.FullName, "taken.txt");
        File.WriteAllText(file, "x");
        var (code, _, err) = await CliRun.Run("train", "--recipe", "fortunes-es", "--out", Path.Combine(file, "run"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith("error: --out: ", err);
        Assert.Contains("is a file", err);
    }

    [Fact]
    public async Task Unwritable_out_is_bad_input()
    {
        // /proc refuses new files even to root, so this holds whoever runs the tests.
        var (code, _, err) = await CliRun.Run("train", "--recipe", "fortunes-es", "--out", "/proc/afinado-run");
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith("error: --out: cannot write in \"/proc\"", err);
    }
}
