namespace Afinado.Cli.Tests;

/// <summary>Runs that start and then meet doubtful settings or a failing disk: a warning, or one clean error line.</summary>
public sealed class TrainRunFailureTests : IDisposable
{
    private const string TinyConfig = """
        {"model_type":"llama","vocab_size":256,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":2,
         "num_key_value_heads":1,"intermediate_size":64,"max_position_embeddings":64}
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("afinado-runfail-");

    public void Dispose() => _dir.Delete(true);

    private string Config()
    {
        var path = Path.Combine(_dir.FullName, "config.json");
        File.WriteAllText(path, TinyConfig);
        return path;
    }

    private string[] Args(string outDir, params string[] extra) =>
    [
        "train", "--model", Config(), "--data", "fortunes-es", "--seq", "16", "--batch", "2", "--eval-every", "0", "--eval-batches", "1",
        "--threads", "1", "--seed", "3", "--out", outDir, .. extra,
    ];

    [Fact]
    public async Task Warmup_not_below_max_steps_is_a_warning_and_the_run_completes()
    {
        var (code, _, err) = await CliRun.Run(Args(Path.Combine(_dir.FullName, "run"), "--max-steps", "2", "--warmup", "5"));
        Assert.True(code == CliApp.ExitOk, err);
        Assert.Contains("warning: --warmup 5 is not below --max-steps 2", err);
    }

    [Fact]
    public async Task Checkpoint_write_failure_is_one_error_line_and_keeps_the_last_good_checkpoint()
    {
        var run = Path.Combine(_dir.FullName, "run");
        // A file where step 4's checkpoint folder goes makes that write fail as a full disk would, after step 2's succeeded.
        Directory.CreateDirectory(Path.Combine(run, "checkpoints"));
        File.WriteAllText(Path.Combine(run, "checkpoints", "step-00000004"), "in the way");
        var (code, _, err) = await CliRun.Run(Args(run, "--max-steps", "4", "--checkpoint-every", "2"));
        Assert.Equal(CliApp.ExitFailure, code);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.StartsWith("error: could not write the checkpoint of step 4", line);
        Assert.Contains("The last good checkpoint is kept: ", line);
        Assert.Contains("step-00000002", line);
        Assert.Contains($"--resume {run}", line);
        Assert.DoesNotContain("   at ", err);
        Assert.Equal("step-00000002", File.ReadAllText(Path.Combine(run, "checkpoints", "latest")).Trim());
        Assert.False(File.Exists(Path.Combine(run, "summary.json")), "a run that could not checkpoint did not finish");
    }

    [Fact]
    public void Disk_full_is_named_in_the_message()
    {
        const int enospc = 28;
        var text = IoFailure.Describe(new IOException("No space left on device : '/runs/a/checkpoints/x'", enospc));
        Assert.StartsWith("the disk is full: No space left on device", text);
        Assert.Equal("Is a directory", IoFailure.Describe(new IOException("Is a directory", 21)));
        var checkpoint = new Afinado.Training.Loop.CheckpointWriteException("could not write the checkpoint of step 4: No space left on device. The last good checkpoint is kept: c/step-2; after freeing space, continue with afinado train --resume r.",
            new IOException("No space left on device", enospc));
        Assert.Equal("the disk is full: could not write the checkpoint of step 4: No space left on device. The last good checkpoint is kept: c/step-2; after freeing space, continue with afinado train --resume r.",
            IoFailure.Describe(checkpoint));
    }
}
