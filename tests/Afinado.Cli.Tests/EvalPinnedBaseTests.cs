using System.Text.Json;

namespace Afinado.Cli.Tests;

public sealed class EvalPinnedBaseTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-pinned-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] Small = ["--train-per-class", "60", "--test-per-class", "30", "--finetune-epochs", "1", "--resamples", "200", "--json"];

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task A_base_pinned_by_file_or_by_a_manifest_record_is_reused_and_a_changed_file_is_refused()
    {
        var first = Path.Combine(_dir, "first");
        var r1 = await Run(["eval", "--out", first, .. Small]);
        Assert.True(r1.Code == 0, r1.Err);
        var baseSha = JsonDocument.Parse(r1.Out).RootElement.GetProperty("base_sha256").GetString()!;
        var baseFile = Path.Combine(first, "base.weights");

        // By file: hashed, and the new run is keyed to the same base.
        var r2 = await Run(["eval", "--out", Path.Combine(_dir, "second"), "--base-model", baseFile, .. Small]);
        Assert.True(r2.Code == 0, r2.Err);
        Assert.Equal(baseSha, JsonDocument.Parse(r2.Out).RootElement.GetProperty("base_sha256").GetString());

        // By the name a manifest records (here the absolute path written by the first run).
        var r3 = await Run(["eval", "--out", Path.Combine(_dir, "third"), "--base-model", Path.GetFullPath(baseFile), "--pinned-in", first, .. Small]);
        Assert.True(r3.Code == 0, r3.Err);

        // A hash that does not match the file is refused before any training.
        var r4 = await Run(["eval", "--out", Path.Combine(_dir, "fourth"), "--base-model", baseFile, "--base-model-sha256", new string('0', 64), .. Small]);
        Assert.Equal(2, r4.Code);
        Assert.Contains("hashes to", r4.Err);

        // Runs from the same base compare without the flag.
        var report = await Run("report", first, Path.Combine(_dir, "second"), "--out", Path.Combine(_dir, "report"));
        Assert.True(report.Code == 0, report.Err);
    }
}
