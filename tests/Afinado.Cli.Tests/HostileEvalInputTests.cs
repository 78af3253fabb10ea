namespace Afinado.Cli.Tests;

/// <summary>
/// Issue 15 for the Evaluation side: <c>eval --tasks</c>, <c>calibration FILE</c> and the files of a run folder given to
/// <c>report</c>. Each reported hostile file is exit 2 with an <c>error:</c> line naming it, never an exception or a hang.
/// </summary>
public sealed class HostileEvalInputTests : IDisposable
{
    private readonly HostileFiles _files = new();

    public void Dispose() => _files.Dispose();

    private Task<(int Code, string Out, string Err)> Eval(string tasks) =>
        HostileFiles.RunGuarded("eval", "--tasks", tasks, "--out", _files.Path($"eval-{Guid.NewGuid():N}"));

    [Fact]
    public async Task Task_file_with_a_lone_surrogate_names_the_file_and_key_path()
    {
        var tasks = _files.Text("tasks.json", """
            {"schema": "afinado.tasks/1", "tasks": [{"name": "t\ud800", "role": "target", "kind": "classification", "classes": [1]}]}
            """);
        HostileFiles.AssertBadInput(await Eval(tasks), "tasks.json", "$.tasks[0].name", "surrogate");
    }

    [Fact]
    public async Task Task_file_that_is_a_fifo_is_refused_without_blocking() =>
        HostileFiles.AssertBadInput(await Eval(_files.Fifo("tasks.json")), "tasks.json", "named pipe");

    [Fact]
    public async Task Task_file_linking_to_dev_zero_is_refused_before_reading() =>
        HostileFiles.AssertBadInput(await Eval(_files.LinkTo("tasks.json", "/dev/zero")), "tasks.json", "character device");

    [Fact]
    public async Task Task_text_that_is_a_fifo_is_refused_without_blocking()
    {
        var text = _files.Fifo("lines.txt");
        var tasks = _files.Text("tasks.json", $$"""
            {"schema": "afinado.tasks/1", "tasks": [
              {"name": "a", "role": "target", "kind": "language_modelling", "text": "{{text}}"},
              {"name": "b", "role": "retained", "kind": "language_modelling", "text": "/usr/share/games/fortunes/science"}]}
            """);
        var result = await HostileFiles.RunGuarded("eval", "--experiment", "fortunes", "--tasks", tasks, "--out", _files.Path("eval"));
        HostileFiles.AssertBadInput(result, "lines.txt", "named pipe");
    }

    [Fact]
    public async Task Predictions_with_a_lone_surrogate_name_the_file_and_line()
    {
        var file = _files.Text("preds.jsonl", "{\"confidence\": 0.8, \"correct\": true}\n{\"confidence\": 0.7, \"correct\": \"\\ud800\"}\n");
        HostileFiles.AssertBadInput(await HostileFiles.RunGuarded("calibration", file), "preds.jsonl:2", "$.correct", "surrogate");
    }

    [Fact]
    public async Task Predictions_with_invalid_utf8_name_the_file_and_line()
    {
        // Line 3 holds a Latin-1 byte: it used to be replaced silently by U+FFFD.
        var file = _files.Bytes("preds.csv", [.. "confidence,correct\n0.9,1\n"u8, 0x30, 0x2E, 0x37, 0xE9, 0x2C, 0x31, 0x0A]);
        HostileFiles.AssertBadInput(await HostileFiles.RunGuarded("calibration", file), "preds.csv:3", "not valid UTF-8");
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    public async Task Predictions_linking_to_an_endless_device_are_refused(string device) =>
        HostileFiles.AssertBadInput(await HostileFiles.RunGuarded("calibration", _files.LinkTo("preds.csv", device)), "preds.csv", "character device");

    [Fact]
    public async Task Predictions_that_are_a_fifo_are_refused_without_blocking() =>
        HostileFiles.AssertBadInput(await HostileFiles.RunGuarded("calibration", _files.Fifo("preds.jsonl")), "preds.jsonl", "named pipe");

    [Fact]
    public async Task Run_manifest_that_is_a_fifo_is_refused_without_blocking()
    {
        var run = Directory.CreateDirectory(_files.Path("run")).FullName;
        _files.Fifo("run/manifest.json");
        HostileFiles.AssertBadInput(await HostileFiles.RunGuarded("report", run, "--out", _files.Path("report")), "manifest.json", "named pipe");
    }

    [Fact]
    public async Task Run_manifest_with_a_lone_surrogate_names_the_file()
    {
        var run = Directory.CreateDirectory(_files.Path("run")).FullName;
        File.WriteAllText(Path.Combine(run, "manifest.json"), "{\"schema\": \"afinado.manifest/1\", \"code_version\": \"\\ud800\"}");
        HostileFiles.AssertBadInput(await HostileFiles.RunGuarded("report", run, "--out", _files.Path("report")), "manifest.json", "$.code_version", "surrogate");
    }

    [Fact]
    public async Task Run_manifest_linking_to_dev_zero_is_refused_before_reading()
    {
        var run = Directory.CreateDirectory(_files.Path("run")).FullName;
        _files.LinkTo("run/manifest.json", "/dev/zero");
        HostileFiles.AssertBadInput(await HostileFiles.RunGuarded("report", run, "--out", _files.Path("report")), "manifest.json", "character device");
    }
}
