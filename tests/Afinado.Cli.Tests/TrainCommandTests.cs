using System.Diagnostics;
using System.Text.Json;

namespace Afinado.Cli.Tests;

/// <summary>
/// The train command end to end, in child processes (a crash must be real: SIGKILL, no chance to save anything).
/// </summary>
public class TrainCommandTests
{
    private const string TinyConfig = """
        {"model_type":"llama","vocab_size":256,"hidden_size":128,"num_hidden_layers":4,"num_attention_heads":4,
         "num_key_value_heads":2,"intermediate_size":256,"max_position_embeddings":128}
        """;

    private static string Afinado => Path.Combine(AppContext.BaseDirectory, "afinado.dll");

    private static Process Start(string args, string stderrPath)
    {
        var psi = new ProcessStartInfo("bash", ["-c", $"exec dotnet \"{Afinado}\" {args} 2>\"{stderrPath}\" >/dev/null"]);
        psi.Environment["OMP_NUM_THREADS"] = "1"; // tests run side by side: one libtorch thread each avoids OpenMP oversubscription
        return Process.Start(psi)!;
    }

    /// <summary>Guards against a hung run only: the runs take seconds to a minute, a loaded machine may take several.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(30);

    private static (int Code, string Err) Run(string args, string dir)
    {
        var err = Path.Combine(dir, $"stderr-{Guid.NewGuid():N}.txt");
        using var p = Start(args, err);
        Assert.True(p.WaitForExit(HangGuard), $"afinado {args} did not finish");
        return (p.ExitCode, File.ReadAllText(err));
    }

    private static string Args(string config, string outDir, int steps) =>
        $"train --model \"{config}\" --data fortunes-es --seq 64 --batch 8 --max-steps {steps} --checkpoint-every 5 --eval-every 0 --eval-batches 1 " +
        $"--method lora --lora-rank 4 --lora-dropout 0.1 --lr 3e-3 --seed 9 --out \"{outDir}\"";

    [Fact]
    public void Run_killed_with_SIGKILL_resumes_to_the_same_final_weights()
    {
        var work = Directory.CreateTempSubdirectory("afinado-kill-").FullName;
        try
        {
            var config = Path.Combine(work, "config.json");
            File.WriteAllText(config, TinyConfig);
            const int steps = 150;
            string a = Path.Combine(work, "a"), b = Path.Combine(work, "b");
            var (codeA, errA) = Run(Args(config, a, steps), work);
            Assert.True(codeA == 0, errA);

            using (var victim = Start(Args(config, b, steps), Path.Combine(work, "victim.txt")))
            {
                var latest = Path.Combine(b, "checkpoints", "latest");
                var sw = Stopwatch.StartNew();
                while (!(File.Exists(latest) && File.ReadAllText(latest).Trim() is var s && s.Length > 5 && long.Parse(s[5..]) >= 20))
                {
                    if (victim.HasExited) Assert.Fail($"the run finished before it could be killed (exit code {victim.ExitCode})");
                    Assert.True(sw.Elapsed < HangGuard, "no checkpoint appeared");
                    Thread.Sleep(20);
                }
                victim.Kill(); // SIGKILL on Linux: no handler runs
                victim.WaitForExit();
            }
            Thread.Sleep(200);
            Assert.False(File.Exists(Path.Combine(b, "summary.json")), "the killed run must not have finished");

            var (codeB, errB) = Run($"train --resume \"{b}\"", work);
            Assert.True(codeB == 0, errB);
            Assert.Contains("resumed from", errB);
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, "model", "model.safetensors")), File.ReadAllBytes(Path.Combine(b, "model", "model.safetensors")));
            using var sa = JsonDocument.Parse(File.ReadAllText(Path.Combine(a, "summary.json")));
            using var sb = JsonDocument.Parse(File.ReadAllText(Path.Combine(b, "summary.json")));
            Assert.Equal(sa.RootElement.GetProperty("final_train_loss").GetDouble(), sb.RootElement.GetProperty("final_train_loss").GetDouble());
            Assert.Equal(steps, sb.RootElement.GetProperty("steps").GetInt64());
        }
        finally
        {
            try { Directory.Delete(work, true); }
            catch (IOException) { } // best effort: never hide the test's own failure
        }
    }

    [Fact]
    public async Task Missing_flags_and_bad_values_exit_2_with_the_flag_named()
    {
        var err = new StringWriter();
        Assert.Equal(2, await CliApp.RunAsync(["train", "--max-steps", "5"], new StringWriter(), err));
        Assert.Contains("--out", err.ToString());
        err = new StringWriter();
        Assert.Equal(2, await CliApp.RunAsync(["train", "--recipe", "nope", "--out", Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString())], new StringWriter(), err));
        Assert.Contains("--recipe", err.ToString());
        err = new StringWriter();
        Assert.Equal(2, await CliApp.RunAsync(["train", "--resume", Path.Combine(Path.GetTempPath(), "no-such-run")], new StringWriter(), err));
        Assert.Contains("--resume", err.ToString());
        err = new StringWriter();
        Assert.Equal(2, await CliApp.RunAsync(["train", "--recipe", "fortunes-es", "--rule", "hebbian", "--max-steps", "1",
            "--out", Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString())], new StringWriter(), err));
        Assert.Contains("--rule", err.ToString());
        Assert.Contains("guided-es", err.ToString());
    }
}

/// <summary>The built-in recipe on the shipped base, as a user runs it on a fresh checkout. Runs alone
/// (<see cref="ProcessMemoryCollection"/>): it asserts the run measured its memory growth.</summary>
[Collection(ProcessMemoryCollection.Name)]
public class RecipeTests
{
    [Fact]
    public async Task Fortunes_es_lora_recipe_runs_five_steps_and_writes_the_summary()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"afinado-recipe-{Guid.NewGuid():N}");
        try
        {
            var stdout = new StringWriter();
            var err = new StringWriter();
            int code = await CliApp.RunAsync(["train", "--recipe", "fortunes-es", "--method", "lora", "--max-steps", "5",
                "--eval-batches", "2", "--threads", "1", "--out", dir, "--json"], stdout, err);
            Assert.True(code == 0, err.ToString());
            using var s = JsonDocument.Parse(stdout.ToString());
            var r = s.RootElement;
            Assert.Equal("afinado.run/1", r.GetProperty("schema").GetString());
            Assert.Equal("completed", r.GetProperty("status").GetString());
            Assert.Equal(5, r.GetProperty("steps").GetInt64());
            Assert.True(r.GetProperty("trainable_parameters").GetInt64() < r.GetProperty("total_parameters").GetInt64() / 10);
            Assert.True(r.GetProperty("planned_peak_bytes").GetInt64() > 0);
            Assert.True(r.GetProperty("measured_peak_bytes").GetInt64() > 0);
            Assert.True(r.GetProperty("extra_validation").GetProperty("fortunes-en").GetProperty("before").GetDouble() > 0);
            Assert.Equal(64, r.GetProperty("manifest").GetProperty("base_weights")[0].GetProperty("sha256").GetString()!.Length);
            Assert.True(File.Exists(Path.Combine(dir, "model", "model.safetensors")));
            Assert.Contains("trainable params:", err.ToString());
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
