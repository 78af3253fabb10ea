using System.Diagnostics;
using Xunit.Abstractions;

namespace Afinado.Cli.Tests.Fuzz;

/// <summary>
/// A subset of the corpus as real <c>afinado</c> processes: what the in-process runs cannot show — the real exit code
/// (an unhandled exception is 134 with a stack trace on stderr), and a bounded heap: each process runs with
/// DOTNET_GCHeapHardLimit at 512 MiB, so a reader that streams /dev/zero dies with OutOfMemory instead of the test host.
/// </summary>
public class HostileProcessTests(ITestOutputHelper log)
{
    private static string Afinado => Path.Combine(AppContext.BaseDirectory, "afinado.dll");

    [Fact]
    public async Task Special_files_end_with_exit_2_in_a_real_process_with_a_bounded_heap()
    {
        var wanted = new[] { "plan --model fifo", "plan --model dev-zero", "inspect dev-urandom", "train --data fifo", "train --data dev-zero",
            "train --model link-loop", "calibration fifo", "calibration dev-zero", "eval --tasks fifo", "eval --run dev-zero", "train --resume fifo" };
        var cases = HostileCorpus.SpecialPaths().Where(c => wanted.Contains(c.Name)).ToList();
        Assert.Equal(wanted.Length, cases.Count);
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var dir = Directory.CreateTempSubdirectory("afinado-hostile-proc-").FullName;
            try
            {
                foreach (var (name, bytes) in c.Files ?? new Dictionary<string, byte[]>()) File.WriteAllBytes(Path.Combine(dir, name), bytes);
                c.Prepare?.Invoke(dir);
                var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
                psi.ArgumentList.Add(Afinado);
                foreach (var a in c.ArgsIn(dir)) psi.ArgumentList.Add(a);
                psi.Environment["DOTNET_GCHeapHardLimit"] = "0x20000000";
                psi.Environment["OMP_NUM_THREADS"] = "1";
                using var p = Process.Start(psi)!;
                var stdout = p.StandardOutput.ReadToEndAsync();
                var stderr = p.StandardError.ReadToEndAsync();
                // Waits for the exit; the limit only turns a hang into a failure instead of a stuck test run.
                using var limit = new CancellationTokenSource(CorpusRunner.HangLimit);
                try { await p.WaitForExitAsync(limit.Token); }
                catch (OperationCanceledException)
                {
                    p.Kill(entireProcessTree: true);
                    failures.Add($"HANG: {c}");
                    continue;
                }
                string err = await stderr;
                log.WriteLine($"{c.Name}: exit {p.ExitCode}: {err.Split('\n')[0]}");
                if (p.ExitCode != 2) failures.Add($"EXIT {p.ExitCode}: {c}\n    {err}");
                else if (CorpusRunner.Problem(c.Args[0], p.ExitCode, await stdout, err) is { } problem) failures.Add($"{problem}: {c}");
            }
            finally { Directory.Delete(dir, recursive: true); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
