using Afinado.Planner.Selection;
using Afinado.Planner.Memory;
using System.Text.Json;
using Afinado.Training.IO;
using Afinado.Training.Loop;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

/// <summary>End-to-end runs of tiny models on Spanish fortunes: checkpoints, interruption + resume, NaN stop, summary contract.</summary>
[Collection(nameof(SerialCollection))]
public class RunTests
{
    internal static TrainConfig TinyRun(int steps) => new()
    {
        ModelConfigJson = TinyConfigs.Llama,
        Data = "fortunes-es",
        SequenceLength = 32,
        BatchSize = 4,
        MaxSteps = steps,
        LearningRate = 3e-3,
        WarmupSteps = 2,
        EvalEvery = 4,
        EvalBatches = 2,
        CheckpointEvery = 2,
        Method = TrainingMethod.Lora,
        LoraRank = 4,
        LoraAlpha = 8,
        LoraDropout = 0.1, // dropout draws from the RNG: resume must reproduce it
        Seed = 5,
    };

    private static string NewDir() => Path.Combine(Path.GetTempPath(), $"afinado-run-{Guid.NewGuid():N}");

    private sealed class CancelAt(long step, CancellationTokenSource cts) : ITrainingProgress
    {
        public void Begin(long firstStep, long totalSteps) { }
        public void Step(long s, double loss, double lr, double rate, TimeSpan eta) { if (s == step) cts.Cancel(); }
        public void Evaluated(long s, double v) { }
        public void Message(InputText text) { }
    }

    [Fact]
    public void Interrupted_run_resumes_to_the_same_weights_as_an_uninterrupted_one()
    {
        string a = NewDir(), b = NewDir();
        try
        {
            var full = new LanguageModelRun(TinyRun(7), a).Execute(new SilentProgress(), CancellationToken.None);
            Assert.Equal("completed", full.Status);

            using var cts = new CancellationTokenSource();
            var stopped = new LanguageModelRun(TinyRun(7), b).Execute(new CancelAt(3, cts), cts.Token);
            Assert.Equal("interrupted", stopped.Status);
            Assert.Equal(3, stopped.Steps);
            Assert.False(Directory.Exists(Path.Combine(b, "model")));

            var resumed = LanguageModelRun.Resume(b).Execute(new SilentProgress(), CancellationToken.None);
            Assert.Equal("completed", resumed.Status);
            Assert.Equal(7, resumed.Steps);
            Assert.Equal(full.FinalTrainLoss, resumed.FinalTrainLoss);
            Assert.Equal(full.InitialValidationLoss, resumed.InitialValidationLoss);
            // The loss curve survives the interruption: the resumed summary holds all 7 steps, equal to the uninterrupted curve.
            Assert.Equal(full.LossCurve!.Select(p => p.Step), resumed.LossCurve!.Select(p => p.Step));
            Assert.Equal(full.LossCurve!.Select(p => p.TrainLoss), resumed.LossCurve!.Select(p => p.TrainLoss));
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, "model", "model.safetensors")), File.ReadAllBytes(Path.Combine(b, "model", "model.safetensors")));
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, "adapter", "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(b, "adapter", "adapter_model.safetensors")));
        }
        finally { Cleanup(a, b); }
    }

    private sealed class Events : ITrainingProgress
    {
        public List<string> Log { get; } = [];
        public void Begin(long firstStep, long totalSteps) => Log.Add("begin");
        public void Step(long s, double loss, double lr, double rate, TimeSpan eta) => Log.Add($"step {s}");
        public void Evaluated(long s, double v) => Log.Add($"evaluated {s}");
        public void Message(InputText text) => Log.Add(text.ToString());
    }

    [Fact]
    public void The_evaluation_before_training_is_announced_before_step_one()
    {
        string dir = NewDir(), folder = NewDir();
        try
        {
            // A base folder (config.json + model.safetensors): its loading is announced first.
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "config.json"), TinyConfigs.Llama);
            using (var m = new Afinado.Training.Models.LlamaForCausalLM(TinyConfigs.Parse(TinyConfigs.Llama)))
                ModuleWeights.Save(m, Path.Combine(folder, "model.safetensors"));
            var events = new Events();
            var summary = new LanguageModelRun(TinyRun(1) with { BaseModel = folder }, dir).Execute(events, CancellationToken.None);
            int loading = events.Log.FindIndex(m => m.StartsWith("loading the base weights: 1 file, ", StringComparison.Ordinal) && m.EndsWith(folder, StringComparison.Ordinal));
            int announce = events.Log.FindIndex(m => m.StartsWith("evaluating before training: up to 2 validation batches of 4 × 32 tokens", StringComparison.Ordinal));
            int result = events.Log.FindIndex(m => m.StartsWith($"validation loss before training: {summary.InitialValidationLoss:F4}", StringComparison.Ordinal));
            int first = events.Log.IndexOf("step 1");
            Assert.True(loading >= 0 && announce > loading && result > announce && first > result, string.Join(" | ", events.Log));
        }
        finally { Cleanup(dir, folder); }
    }

    [Fact]
    public void Summary_follows_the_run_contract()
    {
        var dir = NewDir();
        try
        {
            new LanguageModelRun(TinyRun(2), dir).Execute(new SilentProgress(), CancellationToken.None);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
            var r = doc.RootElement;
            Assert.Equal("afinado.run/1", r.GetProperty("schema").GetString());
            Assert.Equal(2, r.GetProperty("steps").GetInt64());
            Assert.True(r.GetProperty("total_parameters").GetInt64() > r.GetProperty("trainable_parameters").GetInt64());
            Assert.True(r.GetProperty("measured_peak_bytes").GetInt64() > 0);
            Assert.True(r.TryGetProperty("planned_peak_bytes", out _));
            Assert.True(double.IsFinite(r.GetProperty("final_train_loss").GetDouble()));
            Assert.True(double.IsFinite(r.GetProperty("final_validation_loss").GetDouble()));
            Assert.True(r.GetProperty("wall_seconds").GetDouble() > 0);
            Assert.Equal([1L, 2L], r.GetProperty("loss_curve").EnumerateArray().Select(p => p.GetProperty("step").GetInt64()));
            Assert.Equal(r.GetProperty("loss_curve")[0].GetProperty("train_loss").GetDouble(), r.GetProperty("initial_train_loss").GetDouble());
            var m = r.GetProperty("manifest");
            Assert.Equal(64, m.GetProperty("config_sha256").GetString()!.Length);
            Assert.True(m.GetProperty("data_files").GetArrayLength() > 10);
            Assert.Equal(5, m.GetProperty("seed").GetInt64());
            // the exported model is a plain HF folder: the merged weights load with the planner-built architecture
            var loaded = SafeTensors.Read(Path.Combine(dir, "model", "model.safetensors"));
            Assert.Contains("model.layers.1.mlp.down_proj.weight", loaded.Keys);
            Assert.DoesNotContain(loaded.Keys, k => k.Contains("lora_"));
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", SafeTensors.Read(Path.Combine(dir, "adapter", "adapter_model.safetensors")).Keys);
        }
        finally { Cleanup(dir); }
    }

    [Fact]
    public void Nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint()
    {
        var dir = NewDir();
        try
        {
            // Plain SGD at an absurd learning rate blows the weights up within a few steps.
            var config = TinyRun(20) with { Method = TrainingMethod.Full, Optimizer = OptimizerKind.Sgd, LearningRate = 1e12, MinLearningRate = 1e12, WarmupSteps = 0, ClipNorm = null, CheckpointEvery = 1, EvalEvery = 0 };
            var s = new LanguageModelRun(config, dir).Execute(new SilentProgress(), CancellationToken.None);
            Assert.Equal("diverged", s.Status);
            Assert.InRange(s.Steps, 1, 19);
            Assert.Contains("training loss became", s.Message);
            Assert.Contains("last good checkpoint", s.Message);
            var latest = File.ReadAllText(Path.Combine(dir, "checkpoints", "latest")).Trim();
            Assert.Equal($"step-{s.Steps:D8}", latest);
            foreach (var (_, t) in SafeTensors.Read(Path.Combine(dir, "checkpoints", latest, "trainable.safetensors")))
                Assert.True(t.isfinite().all().item<bool>());
            Assert.False(Directory.Exists(Path.Combine(dir, "model")));
        }
        finally { Cleanup(dir); }
    }

    [Fact]
    public void Reusing_an_output_folder_is_an_input_error()
    {
        var dir = NewDir();
        try
        {
            new LanguageModelRun(TinyRun(1), dir).Execute(new SilentProgress(), CancellationToken.None);
            var e = Assert.Throws<InputError>(() => new LanguageModelRun(TinyRun(1), dir).Execute(new SilentProgress(), CancellationToken.None));
            Assert.Equal(RunParameters.Out, e.Parameter);
        }
        finally { Cleanup(dir); }
    }

    private static void Cleanup(params string[] dirs)
    {
        foreach (var d in dirs) if (Directory.Exists(d)) Directory.Delete(d, true);
    }
}
