namespace Afinado.Cli.Tests;

/// <summary>Completes a 4-step tiny run once (checkpoints step-2 and step-4); each test damages its own copy.</summary>
public sealed class FinishedTinyRun : IDisposable
{
    public string Work { get; } = Directory.CreateTempSubdirectory("afinado-resume-cli-").FullName;
    public string Template => Path.Combine(Work, "template");

    public FinishedTinyRun()
    {
        var config = Path.Combine(Work, "config.json");
        File.WriteAllText(config, """
            {"model_type":"llama","vocab_size":256,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,
             "num_key_value_heads":4,"intermediate_size":64,"max_position_embeddings":64}
            """);
        var (code, _, err) = CliRun.Run("train", "--model", config, "--data", "fortunes-es", "--seq", "32", "--batch", "4", "--max-steps", "4",
            "--checkpoint-every", "2", "--eval-every", "0", "--eval-batches", "1", "--method", "lora", "--lora-rank", "4", "--threads", "1",
            "--out", Template).GetAwaiter().GetResult();
        if (code != 0) throw new InvalidOperationException($"template run failed ({code}): {err}");
    }

    /// <summary>A fresh copy of the finished run folder.</summary>
    public string Copy()
    {
        var dest = Path.Combine(Work, Guid.NewGuid().ToString("N"));
        foreach (var d in Directory.GetDirectories(Template, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(dest, Path.GetRelativePath(Template, d)));
        foreach (var f in Directory.GetFiles(Template, "*", SearchOption.AllDirectories))
            File.Copy(f, Path.Combine(dest, Path.GetRelativePath(Template, f)));
        return dest;
    }

    public void Dispose() => Directory.Delete(Work, true);
}

/// <summary><c>afinado train --resume</c> on damaged run folders: exit 0 with the fallback said, or exit 2 naming what is damaged.</summary>
public sealed class TrainResumeDamageTests(FinishedTinyRun run) : IClassFixture<FinishedTinyRun>
{
    private static void AssertInputError(int code, string err, string names)
    {
        Assert.True(code == 2, err);
        Assert.Contains("\nerror: --resume: ", "\n" + err); // after any progress lines
        Assert.Contains(names, err);
        Assert.DoesNotContain("   at ", err); // no stack trace
    }

    [Fact]
    public async Task Bit_flipped_latest_checkpoint_resumes_from_the_older_one_with_exit_0_and_says_why()
    {
        var dir = run.Copy();
        var trainable = Path.Combine(dir, "checkpoints", "step-00000004", "trainable.safetensors");
        var bytes = File.ReadAllBytes(trainable);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(trainable, bytes);

        var (code, stdout, err) = await CliRun.Run("train", "--resume", dir);

        Assert.True(code == 0, err);
        Assert.Contains("step-00000004 trainable.safetensors does not match its SHA-256", err);
        Assert.Contains("Resuming from the newest intact checkpoint, step-00000002 (step 2)", err);
        Assert.Contains($"resumed from {Path.Combine(dir, "checkpoints", "step-00000002")} at step 2", err);
        Assert.StartsWith("completed: 4/4 steps", stdout);
    }

    [Fact]
    public async Task Latest_pointing_outside_the_run_is_not_followed()
    {
        var dir = run.Copy();
        var other = run.Copy();
        File.WriteAllText(Path.Combine(dir, "checkpoints", "latest"), $"../../{Path.GetFileName(other)}/checkpoints/step-00000004");

        var (code, _, err) = await CliRun.Run("train", "--resume", dir);

        Assert.True(code == 0, err);
        Assert.Contains("not a step-NNNNNNNN folder of this run", err);
        Assert.Contains($"resumed from {Path.Combine(dir, "checkpoints", "step-00000004")} at step 4", err);
    }

    [Fact]
    public async Task No_intact_checkpoint_exits_2_naming_the_checkpoints_folder()
    {
        var dir = run.Copy();
        foreach (var step in new[] { "step-00000002", "step-00000004" }) File.Delete(Path.Combine(dir, "checkpoints", step, "state.json"));

        var (code, _, err) = await CliRun.Run("train", "--resume", dir);

        AssertInputError(code, err, $"no intact checkpoint in {Path.Combine(dir, "checkpoints")}");
        Assert.Contains("step-00000004 state.json is missing", err);
    }

    [Fact]
    public async Task Missing_checkpoints_folder_exits_2_instead_of_restarting_from_step_0()
    {
        var dir = run.Copy();
        Directory.Delete(Path.Combine(dir, "checkpoints"), true);

        var (code, _, err) = await CliRun.Run("train", "--resume", dir);

        AssertInputError(code, err, "has no checkpoint to continue from");
    }

    [Theory]
    [InlineData("run-config.json", "not json")]
    [InlineData("manifest.json", null)]
    public async Task Damaged_run_file_exits_2_naming_the_file(string file, string? content)
    {
        var dir = run.Copy();
        if (content is null) File.Delete(Path.Combine(dir, file));
        else File.WriteAllText(Path.Combine(dir, file), content);

        var (code, _, err) = await CliRun.Run("train", "--resume", dir);

        AssertInputError(code, err, Path.Combine(dir, file));
    }
}
