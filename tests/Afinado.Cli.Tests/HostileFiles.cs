using Mono.Unix.Native;

namespace Afinado.Cli.Tests;

/// <summary>
/// Files a hostile or careless user can hand over in place of a data, task, predictions or run file: a FIFO (opening
/// it blocks until a writer comes), links to endless devices, raw bytes. Commands on them run guarded, so a regression
/// fails the test instead of hanging the suite.
/// </summary>
internal sealed class HostileFiles : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("afinado-hostile-").FullName;

    public void Dispose() => Directory.Delete(Dir, true);

    public string Path(string name) => System.IO.Path.Combine(Dir, name);

    public string Text(string name, string content)
    {
        File.WriteAllText(Path(name), content);
        return Path(name);
    }

    public string Bytes(string name, byte[] content)
    {
        File.WriteAllBytes(Path(name), content);
        return Path(name);
    }

    /// <summary>A named pipe nobody writes to: a reader that opens it blocks forever.</summary>
    public string Fifo(string name)
    {
        Assert.Equal(0, Syscall.mkfifo(Path(name), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        return Path(name);
    }

    /// <summary>A link with an ordinary-looking name to a device such as /dev/zero (never ends) or /dev/urandom.</summary>
    public string LinkTo(string name, string target)
    {
        File.CreateSymbolicLink(Path(name), target);
        return Path(name);
    }

    /// <summary>
    /// Runs the command on a background task and fails if it has not returned after a generous wait: a reader that
    /// blocks on a FIFO or streams a device never returns, and the test must report that rather than hang.
    /// </summary>
    public static async Task<(int Code, string Out, string Err)> RunGuarded(params string[] args)
    {
        var run = Task.Run(() => CliRun.Run(args));
        // The corpus's hang guard (minutes): it waits for the return, a slow machine only waits longer.
        var finished = await Task.WhenAny(run, Task.Delay(Fuzz.CorpusRunner.HangLimit));
        Assert.True(finished == run, $"afinado {string.Join(' ', args)} did not return within {Fuzz.CorpusRunner.HangLimit.TotalSeconds:0} s: it blocked on a FIFO or kept reading a device");
        return await run;
    }

    /// <summary>Exit 2 with an <c>error:</c> line that names <paramref name="expected"/> (a path, file:line, a key).</summary>
    public static void AssertBadInput((int Code, string Out, string Err) result, params string[] expected)
    {
        Assert.True(result.Code == 2, $"exit {result.Code}, expected 2; stderr:\n{result.Err}");
        var error = result.Err.Split('\n').FirstOrDefault(l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.True(error is not null, $"no error: line in stderr:\n{result.Err}");
        foreach (var e in expected) Assert.Contains(e, error);
        Assert.DoesNotContain("   at ", result.Err); // no stack trace
    }
}
