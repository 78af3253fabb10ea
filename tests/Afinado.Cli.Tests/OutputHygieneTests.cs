using System.CommandLine;
using Afinado.Planner;
using Afinado.TestSupport;

namespace Afinado.Cli.Tests;

/// <summary>
/// Text from files and flags reaches the terminal with its control characters spelled out, and any failure ends in
/// one escaped <c>error:</c> line rather than a stack trace.
/// </summary>
public sealed class OutputHygieneTests : IDisposable
{
    private const string Red = "\u001b[31m";
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("afinado-hygiene-");

    public void Dispose() => _dir.Delete(true);

    [Fact]
    public async Task Inspect_tensor_table_escapes_a_tensor_name_with_an_escape_sequence()
    {
        var file = Path.Combine(_dir.FullName, "evil.safetensors");
        SafetensorsWriter.Write(file, [($"model.{Red}owned", "F32", [2L, 2L]), ("lm_head.weight", "F32", [2L, 2L])], new Dictionary<string, string> { ["format"] = "pt" });
        var (code, output, err) = await CliRun.Run("inspect", file, "--tensors");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.DoesNotContain('\u001b', output + err);
        Assert.Contains("model.\\x1b[31mowned", output);
    }

    [Fact]
    public async Task Error_line_escapes_input_it_echoes()
    {
        var (code, _, err) = await CliRun.Run("plan", "--model", $"no/such{Red}model");
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.DoesNotContain('\u001b', err);
        Assert.Contains("no/such\\x1b[31mmodel", err);
    }

    [Fact]
    public async Task Unexpected_exception_is_one_escaped_error_line_and_exit_1()
    {
        var root = new RootCommand("test");
        var boom = new Command("boom");
        boom.SetAction(int (_) => throw new InvalidOperationException($"broken {Red}state"));
        root.Subcommands.Add(boom);
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = await CliApp.RunAsync(root, ["boom"], o, e);
        Assert.Equal(CliApp.ExitFailure, code);
        Assert.Equal("error: unexpected failure: System.InvalidOperationException: broken \\x1b[31mstate", e.ToString().Split(Environment.NewLine)[0]);
        if (Environment.GetEnvironmentVariable(CliApp.DebugVariable) != "1") Assert.DoesNotContain("   at ", e.ToString());
    }
}
