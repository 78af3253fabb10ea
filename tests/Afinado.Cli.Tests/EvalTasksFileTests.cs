using System.Text.Json;

namespace Afinado.Cli.Tests;

public sealed class EvalTasksFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-tasks-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task User_declared_class_tasks_drive_the_split_and_every_task_is_reported()
    {
        var tasks = Path.Combine(_dir, "tasks.json");
        File.WriteAllText(tasks, """
            {"schema": "afinado.tasks/1", "tasks": [
              {"name": "footwear", "role": "target", "kind": "classification", "classes": [5, 7, 9]},
              {"name": "tops", "role": "retained", "kind": "classification", "classes": [0, 2, 4, 6]},
              {"name": "other", "role": "retained", "kind": "classification", "classes": [1, 3, 8]}]}
            """);
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CliApp.RunAsync(["eval", "--tasks", tasks, "--out", Path.Combine(_dir, "run"), "--train-per-class", "80",
            "--test-per-class", "40", "--finetune-epochs", "1", "--resamples", "200", "--json"], o, e);
        Assert.True(code == 0, e.ToString());
        using var doc = JsonDocument.Parse(o.ToString());
        var names = doc.RootElement.GetProperty("tasks").EnumerateArray().Select(t => t.GetProperty("task").GetProperty("name").GetString()).ToList();
        Assert.Equal(["footwear", "tops", "other"], names);
        Assert.Equal("afinado.eval/1", doc.RootElement.GetProperty("schema").GetString());
        Assert.Contains("eval:", e.ToString()); // progress goes to stderr with --json

        // The per-model prediction files reproduce eval.json's calibration through `afinado calibration`.
        var tops = doc.RootElement.GetProperty("tasks")[1];
        var finetunedEce = tops.GetProperty("scores").EnumerateArray().Single(s => s.GetProperty("model").GetString() == "finetuned")
            .GetProperty("calibration").GetProperty("ece").GetDouble();
        var co = new StringWriter();
        Assert.Equal(0, await CliApp.RunAsync(["calibration", Path.Combine(_dir, "run", "predictions", "tops.finetuned.jsonl"), "--json"], co, new StringWriter()));
        using var cal = JsonDocument.Parse(co.ToString());
        Assert.Equal(finetunedEce, cal.RootElement.GetProperty("ece").GetDouble(), 12);
        Assert.Equal(160, cal.RootElement.GetProperty("n").GetInt32()); // 4 classes × 40 test images
    }

    [Fact]
    public async Task A_tasks_file_with_overlapping_classes_is_bad_input()
    {
        var tasks = Path.Combine(_dir, "bad.json");
        File.WriteAllText(tasks, """
            {"schema": "afinado.tasks/1", "tasks": [
              {"name": "a", "role": "target", "kind": "classification", "classes": [5, 6]},
              {"name": "b", "role": "retained", "kind": "classification", "classes": [6, 7]}]}
            """);
        var e = new StringWriter();
        var code = await CliApp.RunAsync(["eval", "--tasks", tasks, "--out", Path.Combine(_dir, "run")], new StringWriter(), e);
        Assert.Equal(2, code);
        Assert.Contains("tasks[1].classes", e.ToString());
        Assert.Contains("class 6 is also in task 'a'", e.ToString());
    }
}
