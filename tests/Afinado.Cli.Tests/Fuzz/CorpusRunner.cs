using System.Text.RegularExpressions;

namespace Afinado.Cli.Tests.Fuzz;

/// <summary>
/// Runs hostile cases through the real command line in-process (<see cref="CliApp.RunAsync"/> with captured writers)
/// and checks what issue 15 promises for each: it ends (a case still running after <see cref="HangLimit"/> is a hang —
/// the limit waits for the exit, it does not time the work), with exit 0, 2 or 3 (1 means an unexpected failure, an
/// escaped exception is a crash), an exit 2 prints an <c>error:</c> line naming a flag, file or key, no stack trace is
/// printed, and no terminal control sequence from the input reaches the output.
/// </summary>
internal static partial class CorpusRunner
{
    /// <summary>How long a case may run before it counts as hung: generous (3 min; AFINADO_FUZZ_HANG_SECONDS overrides it
    /// when exploring, where a hung case should fail fast).</summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("AFINADO_FUZZ_HANG_SECONDS"), System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 180);

    public sealed record Outcome(int Cases, IReadOnlyDictionary<int, int> ByExit, IReadOnlyList<string> Failures);

    public static async Task<Outcome> Run(IEnumerable<HostileCase> cases)
    {
        var byExit = new SortedDictionary<int, int>();
        var failures = new List<string>();
        int n = 0;
        foreach (var c in cases)
        {
            n++;
            var dir = Directory.CreateTempSubdirectory("afinado-hostile-").FullName;
            bool hung = false;
            try
            {
                foreach (var (name, bytes) in c.Files ?? new Dictionary<string, byte[]>()) File.WriteAllBytes(Path.Combine(dir, name), bytes);
                c.Prepare?.Invoke(dir);
                var args = c.ArgsIn(dir);
                var run = Task.Run(() => CliRun.Run(args));
                if (await Task.WhenAny(run, Task.Delay(HangLimit)) != run)
                {
                    hung = true;
                    failures.Add($"HANG (no exit after {HangLimit.TotalSeconds:0} s): {c}");
                    continue;
                }
                if (run.IsFaulted)
                {
                    var e = run.Exception!.GetBaseException();
                    failures.Add($"CRASH {e.GetType().Name}: {Line(e.Message)}: {c}");
                    continue;
                }
                var (code, stdout, stderr) = run.Result;
                byExit[code] = byExit.GetValueOrDefault(code) + 1;
                if (Problem(c.Args[0], code, stdout, stderr) is { } problem) failures.Add($"{problem}: {c}\n    stderr: {Line(stderr)}");
            }
            finally
            {
                // A hung case may still hold files open in its folder: leave it for the OS to clean.
                if (!hung) TryDelete(dir);
            }
        }
        return new Outcome(n, byExit, failures);
    }

    /// <summary>What is wrong with one result of <paramref name="command"/> (null: nothing). Exit 1 is a finding only where
    /// README's exit-code table gives it one: <c>inspect</c> (the checkpoint disagrees with its config) and a training
    /// run whose loss or weights became NaN/Inf; anywhere else, and "unexpected failure" always, it is a failure.</summary>
    public static string? Problem(string command, int code, string stdout, string stderr)
    {
        bool documentedOne = code == 1 && !stderr.Contains("unexpected failure", StringComparison.Ordinal)
            && (command == "inspect" || (command == "train" && (stderr.Contains("loss became", StringComparison.Ordinal) || stderr.Contains("became NaN or infinite", StringComparison.Ordinal))));
        if (code is not (0 or 2 or 3) && !documentedOne) return $"EXIT {code}";
        if (StackTrace().IsMatch(stdout) || StackTrace().IsMatch(stderr)) return "STACK TRACE printed";
        if (stdout.Concat(stderr).Any(ch => ch is '\u001b' or '\u0007' or (>= '\u0080' and <= '\u009f')))
            return "TERMINAL CONTROL characters printed";
        if (code == 2)
        {
            var error = stderr.Split('\n').FirstOrDefault(l => l.StartsWith("error:", StringComparison.Ordinal));
            if (error is null) return "EXIT 2 without an error: line";
            if (!NamesSomething().IsMatch(error)) return "EXIT 2 error does not name a flag, file or key";
        }
        return null;
    }

    private static string Line(string s)
    {
        var first = s.Split('\n').FirstOrDefault(l => l.Trim().Length > 0) ?? "";
        return TerminalText.Escape(first.Length > 300 ? first[..300] + "…" : first);
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    [GeneratedRegex(@"^\s+at [\w.<>`$|,\[\] ]+\(", RegexOptions.Multiline)]
    private static partial Regex StackTrace();

    /// <summary>A flag (<c>--seq</c>), an argument name (FILE, path), a file (<c>x.json</c>, <c>/tmp/…</c>), a key path (<c>$.a</c>,
    /// <c>tasks[0].name</c>) or a config key (<c>config.json: hidden_size</c>).</summary>
    [GeneratedRegex(@"--[a-z]|argument '|\bFILE\b|\bpath\b|/|\.(json|jsonl|txt|csv|safetensors)\b|\$\.|\w\[\d+\]|\w+\.json: ?\w", RegexOptions.IgnoreCase)]
    private static partial Regex NamesSomething();
}
