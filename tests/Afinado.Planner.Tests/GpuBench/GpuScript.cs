using System.Diagnostics;
using System.Text.Json;

namespace Afinado.Planner.Tests.GpuBench;

/// <summary>Runs <c>bench/gpu/measure.py</c> with a Python that has torch, and reads what it writes.</summary>
internal static class GpuScript
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string CatalogConfigs => Path.Combine(RepoRoot, "src", "Afinado.Planner", "Catalog", "configs");

    private static readonly Lazy<string> Python = new(FindPythonWithTorch);

    public sealed record Result(int ExitCode, string Output, string OutDir)
    {
        public GroundTruthCsv Csv => GroundTruthCsv.Read(Path.Combine(OutDir, "gpu-ground-truth.csv"));

        /// <summary>run-info.json: versions, statuses, the subprocesses started for other alloc_confs.</summary>
        public JsonElement RunInfo
        {
            get
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(OutDir, "run-info.json")));
                return doc.RootElement.Clone();
            }
        }

        /// <summary>configs-used.json: the exact config.json dict each row's model was built from, by file name.</summary>
        public IReadOnlyDictionary<string, string> ConfigsUsed
        {
            get
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(OutDir, "configs-used.json")));
                return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetRawText());
            }
        }
    }

    /// <summary>Runs the script with <paramref name="args"/> plus <c>--out</c> (a fresh temp folder).</summary>
    public static Result Run(params string[] args)
    {
        var outDir = Directory.CreateTempSubdirectory("afinado-gpu-dry-").FullName;
        var (exitCode, output) = RunScript("measure.py", [.. args, "--out", outDir]);
        return new Result(exitCode, output, outDir);
    }

    /// <summary>
    /// Runs a script of bench/gpu (measure.py, a self-test) with the Python that has torch: exit code and output. Waits
    /// for the exit; the limit only stops a hung script from holding CI, far above any slow machine's run time.
    /// </summary>
    public static (int ExitCode, string Output) RunScript(string fileName, params string[] args) =>
        RunPython(Path.Combine("bench", "gpu", fileName), args);

    /// <summary>Runs a Python script of the repository (path relative to its root) with the Python that has torch.</summary>
    public static (int ExitCode, string Output) RunPython(string relativePath, params string[] args)
    {
        string fileName = Path.GetFileName(relativePath);
        var start = new ProcessStartInfo(Python.Value)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot,
        };
        start.ArgumentList.Add(Path.Combine(RepoRoot, relativePath));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1"; // tiny models: threads only add contention on a shared CI box
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(HangLimit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', args)} hung: no exit after {HangLimit.TotalMinutes} minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static readonly TimeSpan HangLimit = TimeSpan.FromMinutes(30);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Afinado.slnx"))) return dir.FullName;
        throw new InvalidOperationException("Afinado.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <summary>
    /// AFINADO_PYTHON if set, else the first of Debian's /usr/bin/python3 and PATH's python3 that imports torch
    /// (a pyenv python3 first on PATH usually lacks it). CI installs Debian's python3-torch.
    /// </summary>
    private static string FindPythonWithTorch()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("AFINADO_PYTHON") is { Length: > 0 } chosen) candidates.Add(chosen);
        candidates.AddRange(["/usr/bin/python3", "python3"]);
        foreach (var candidate in candidates)
        {
            try
            {
                var probe = new ProcessStartInfo(candidate, ["-c", "import torch"])
                    { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
                using var p = Process.Start(probe)!;
                p.StandardError.ReadToEnd();
                // `import torch` can take a minute on a loaded machine: wait for it (HangLimit only guards a hang).
                if (p.WaitForExit(HangLimit) && p.ExitCode == 0) return candidate;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // not installed: try the next one
            }
        }
        throw new InvalidOperationException(
            "No python3 with torch found (tried " + string.Join(", ", candidates) + "). " +
            "Install Debian's python3-torch (.ci/run does), or set AFINADO_PYTHON to a python that has torch.");
    }
}
