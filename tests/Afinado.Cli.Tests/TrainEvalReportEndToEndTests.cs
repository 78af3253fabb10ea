using System.Text.Json;
using System.Text.Json.Nodes;

namespace Afinado.Cli.Tests;

/// <summary>
/// The two halves together, as a user runs them: finetune the shipped base with the built-in Spanish recipe (LoRA,
/// a few steps), score the run against its pinned base with <c>eval --run</c>, and report both folders.
/// </summary>
public sealed class TrainEvalReportEndToEndTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-e2e-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> Cli(params string[] args)
    {
        var stdout = new StringWriter();
        var err = new StringWriter();
        int code = await CliApp.RunAsync(args, stdout, err);
        return (code, stdout.ToString(), err.ToString());
    }

    [Fact]
    public async Task Recipe_run_is_evaluated_against_its_pinned_base_and_reported()
    {
        var run = Path.Combine(_dir, "run");
        var eval = Path.Combine(_dir, "eval");
        var report = Path.Combine(_dir, "report");
        var train = await Cli("train", "--recipe", "fortunes-es", "--method", "lora", "--max-steps", "6", "--eval-every", "3",
            "--eval-batches", "2", "--threads", "1", "--out", run);
        Assert.True(train.Code == 0, train.Err);

        // The trainer's summary is the shared contract and carries the loss curve (one point per step, validation where evaluated).
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "summary.json")))!;
        var curve = summary["loss_curve"]!.AsArray();
        Assert.Equal(6, curve.Count);
        Assert.NotNull(curve[2]!["validation_loss"]);

        var ev = await Cli("eval", "--run", run, "--out", eval, "--items-per-task", "20", "--resamples", "200", "--retained", "computers", "science", "--json");
        Assert.True(ev.Code == 0, ev.Err);
        var result = JsonNode.Parse(ev.Out)!;
        Assert.Equal("afinado.eval/1", (string?)result["schema"]);
        var tasks = result["tasks"]!.AsArray();
        Assert.Equal(3, tasks.Count);
        var retained = tasks.Where(t => (string?)t!["task"]!["role"] == "retained").ToList();
        Assert.Equal(2, retained.Count);
        foreach (var t in retained)
        {
            var tax = t!["tax"]!;
            Assert.True((double)tax["lower"]! <= (double)tax["value"]! && (double)tax["value"]! <= (double)tax["upper"]!);
        }
        // Calibration before (base) and after (finetuned) on every task.
        foreach (var t in tasks)
            foreach (var model in new[] { "base", "finetuned" })
                Assert.InRange((double)t!["scores"]!.AsArray().Single(s => (string?)s!["model"] == model)!["calibration"]!["ece"]!, 0, 1);
        Assert.Equal("the base model as is", (string?)result["gains"]![0]!["baseline"]);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(eval, "manifest.json")))!;
        Assert.Equal((string?)JsonNode.Parse(File.ReadAllText(Path.Combine(run, "manifest.json")))!["base_weights"]![0]!["sha256"],
            (string?)manifest["base_weights"]![0]!["sha256"]);

        var rep = await Cli("report", run, eval, "--out", report);
        Assert.True(rep.Code == 0, rep.Err);
        Assert.True(File.Exists(Path.Combine(report, "report.html")));
        Assert.True(File.Exists(Path.Combine(report, "figures", "loss-curves.png")));
        var html = File.ReadAllText(Path.Combine(report, "report.html"));
        Assert.Contains("fortunes-en validation loss before → after", html);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(report, "report.json")));
        var evalRun = doc.RootElement.GetProperty("runs").EnumerateArray().Single(r => r.GetProperty("name").GetString() == "eval");
        Assert.Contains(evalRun.GetProperty("evaluation").GetProperty("tasks").EnumerateArray(), t => t.GetProperty("tax").ValueKind == JsonValueKind.Object);

        // A run from different base weights is refused unless allowed.
        var other = Path.Combine(_dir, "other");
        Directory.CreateDirectory(other);
        var otherManifest = File.ReadAllText(Path.Combine(run, "manifest.json"));
        var baseSha = (string)manifest["base_weights"]![0]!["sha256"]!;
        File.WriteAllText(Path.Combine(other, "manifest.json"), otherManifest.Replace(baseSha, new string('0', 64)));
        var refused = await Cli("report", run, other, "--out", Path.Combine(_dir, "report2"));
        Assert.Equal(2, refused.Code);
        Assert.Contains("--allow-different-base", refused.Err);
        Assert.Equal(0, (await Cli("report", run, other, "--allow-different-base", "--out", Path.Combine(_dir, "report3"))).Code);

        // Base weights whose bytes no longer match the manifest are refused by eval.
        File.WriteAllText(Path.Combine(run, "manifest.json"), otherManifest.Replace(baseSha, new string('0', 64)));
        var changed = await Cli("eval", "--run", run, "--out", Path.Combine(_dir, "eval2"));
        Assert.Equal(2, changed.Code);
        Assert.Contains("manifest pins", changed.Err);
    }
}
