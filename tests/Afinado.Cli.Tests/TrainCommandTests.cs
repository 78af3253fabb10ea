using System.Diagnostics;
using System.Text.Json;

namespace Afinado.Cli.Tests;

/// <summary>
/// The train command end to end, in child processes (a crash must be real: SIGKILL, no chance to save anything).
/// </summary>
public class TrainCommandTests
{
    private const string TinyConfig = """
        {"model_type":"llama","vocab_size":256,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":2,"intermediate_size":128,"max_position_embeddings":64}
        """;

    private static string Afinado => Path.Combine(AppContext.BaseDirectory, "afinado.dll");

    private static Process Start(string args, string stderrPath)
    {
        var psi = new ProcessStartInfo("bash", ["-c", $"exec dotnet \"{Afinado}\" {args} 2>\"{stderrPath}\" >/dev/null"]);
        psi.Environment["OMP_NUM_THREADS"] = "1"; // tests run side by side: one libtorch thread each avoids OpenMP oversubscription
        return Process.Start(psi)!;
    }

    private static (int Code, string Err) Run(string args, string dir)
    {
        var err = Path.Combine(dir, $"stderr-{Guid.NewGuid():N}.txt");
        using var p = Start(args, err);
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(4)), $"afinado {args} did not finish");
        return (p.ExitCode, File.ReadAllText(err));
    }

    private static string Args(string config, string outDir, int steps) =>
        $"train --model \"{config}\" --data fortunes-es --seq 32 --batch 4 --max-steps {steps} --checkpoint-every 3 --eval-every 0 --eval-batches 1 " +
        $"--method lora --lora-rank 4 --lora-dropout 0.1 --lr 3e-3 --seed 9 --out \"{outDir}\"";

    [Fact]
    public void Run_killed_with_SIGKILL_resumes_to_the_same_final_weights()
    {
        var work = Directory.CreateTempSubdirectory("afinado-kill-").FullName;
        try
        {
            var config = Path.Combine(work, "config.json");
            File.WriteAllText(config, TinyConfig);
            const int steps = 120;
            string a = Path.Combine(work, "a"), b = Path.Combine(work, "b");
            var (codeA, errA) = Run(Args(config, a, steps), work);
            Assert.True(codeA == 0, errA);

            using (var victim = Start(Args(config, b, steps), Path.Combine(work, "victim.txt")))
            {
                var latest = Path.Combine(b, "checkpoints", "latest");
                var sw = Stopwatch.StartNew();
                while (!(File.Exists(latest) && File.ReadAllText(latest).Trim() is var s && s.Length > 5 && long.Parse(s[5..]) >= 9))
                {
                    Assert.False(victim.HasExited, "the run finished before it could be killed: " + File.ReadAllText(Path.Combine(work, "victim.txt")));
                    Assert.True(sw.Elapsed < TimeSpan.FromMinutes(3), "no checkpoint appeared");
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
        finally { Directory.Delete(work, true); }
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
    }
}
