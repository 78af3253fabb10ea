using Afinado.Planner;
using Afinado.Training.Checkpoints;
using Afinado.Training.Data;
using Afinado.Training.LearningRules;
using Afinado.Training.Loop;
using Afinado.Training.Models;
using Afinado.Training.Optim;
using Afinado.Training.Selection;
using Afinado.Training.Tokenization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

/// <summary>
/// <c>--resume</c> on damaged run folders, end to end on a tiny model: fall back to the newest intact checkpoint and
/// say so, or refuse with an input error; never restart from step 0 and never resume from corrupt state.
/// </summary>
[Collection(nameof(SerialCollection))]
public sealed class ResumeTests : IDisposable
{
    private readonly string dir = Path.Combine(Path.GetTempPath(), $"afinado-resume-{Guid.NewGuid():N}");
    private string Checkpoints => Path.Combine(dir, "checkpoints");

    public void Dispose()
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    private sealed class Recorder(long cancelAt = -1, CancellationTokenSource? cts = null) : ITrainingProgress
    {
        public List<string> Messages { get; } = [];
        public void Begin(long firstStep, long totalSteps) { }
        public void Step(long s, double loss, double lr, double rate, TimeSpan eta) { if (s == cancelAt) cts!.Cancel(); }
        public void Evaluated(long s, double v) { }
        public void Message(InputText text) => Messages.Add(text.ToString());
    }

    /// <summary>A 6-step run interrupted after step 4: checkpoints step-2 and step-4, latest = step-4.</summary>
    private void InterruptedRun()
    {
        using var cts = new CancellationTokenSource();
        var s = new LanguageModelRun(RunTests.TinyRun(6), dir).Execute(new Recorder(4, cts), cts.Token);
        Assert.Equal("interrupted", s.Status);
        Assert.Equal(["step-00000002", "step-00000004"], Directory.GetDirectories(Checkpoints).Select(Path.GetFileName).Order());
    }

    private void FlipByte(string step, string file = "trainable.safetensors")
    {
        var path = Path.Combine(Checkpoints, step, file);
        var bytes = File.ReadAllBytes(path);
        bytes[^5] ^= 0x01;
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void Bit_flipped_latest_checkpoint_resumes_exactly_from_the_older_one_and_says_so()
    {
        var reference = dir + "-full";
        try
        {
            var full = new LanguageModelRun(RunTests.TinyRun(6), reference).Execute(new SilentProgress(), CancellationToken.None);
            InterruptedRun();
            FlipByte("step-00000004");
            var progress = new Recorder();
            var resumed = LanguageModelRun.Resume(dir).Execute(progress, CancellationToken.None);

            Assert.Equal("completed", resumed.Status);
            Assert.Equal(6, resumed.Steps);
            Assert.Equal(2, resumed.Resumed!.Step);
            Assert.Equal(Path.Combine(Checkpoints, "step-00000002"), resumed.Resumed.Checkpoint);
            Assert.Contains(resumed.Resumed.Skipped, p => p.StartsWith("step-00000004 trainable.safetensors does not match its SHA-256", StringComparison.Ordinal));
            Assert.Contains(progress.Messages, m => m.Contains("Resuming from the newest intact checkpoint, step-00000002 (step 2)", StringComparison.Ordinal));
            Assert.Contains("\"skipped\"", File.ReadAllText(Path.Combine(dir, LanguageModelRun.SummaryFile)));
            // The fallback is still an exact resume: same weights as the uninterrupted run.
            Assert.Equal(full.FinalTrainLoss, resumed.FinalTrainLoss);
            Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "adapter", "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(dir, "adapter", "adapter_model.safetensors")));
        }
        finally { if (Directory.Exists(reference)) Directory.Delete(reference, true); }
    }

    [Fact]
    public void All_checkpoints_damaged_is_refused_naming_the_folder()
    {
        InterruptedRun();
        FlipByte("step-00000004");
        FlipByte("step-00000002", "optimizer.safetensors");
        var summaryBefore = File.ReadAllText(Path.Combine(dir, LanguageModelRun.SummaryFile));
        var e = Assert.Throws<InputError>(() => LanguageModelRun.Resume(dir).Execute(new SilentProgress(), CancellationToken.None));
        Assert.Equal(RunParameters.Resume, e.Parameter);
        Assert.Contains($"no intact checkpoint in {Checkpoints}", e.Message);
        Assert.Contains("step-00000004 trainable.safetensors", e.Message);
        Assert.Contains("step-00000002 optimizer.safetensors", e.Message);
        Assert.Equal(summaryBefore, File.ReadAllText(Path.Combine(dir, LanguageModelRun.SummaryFile))); // nothing ran
        Assert.False(Directory.Exists(Path.Combine(dir, "model")));
    }

    [Fact]
    public void Missing_checkpoints_folder_is_refused_not_restarted_from_step_0()
    {
        InterruptedRun();
        Directory.Delete(Checkpoints, true);
        var e = Assert.Throws<InputError>(() => LanguageModelRun.Resume(dir).Execute(new SilentProgress(), CancellationToken.None));
        Assert.Contains("has no checkpoint to continue from", e.Message);
        Assert.False(Directory.Exists(Checkpoints));
    }

    [Theory]
    [InlineData(LanguageModelRun.ConfigFile, "{\"data\": ")]
    [InlineData(LanguageModelRun.ConfigFile, "null")]
    [InlineData(LanguageModelRun.ManifestFile, "[1, 2]")]
    [InlineData(LanguageModelRun.ManifestFile, null)]
    public void Missing_or_invalid_run_file_is_an_input_error_naming_it(string file, string? content)
    {
        InterruptedRun();
        var path = Path.Combine(dir, file);
        if (content is null) File.Delete(path);
        else File.WriteAllText(path, content);
        var e = Assert.Throws<InputError>(() => LanguageModelRun.Resume(dir).Execute(new SilentProgress(), CancellationToken.None));
        Assert.Equal(RunParameters.Resume, e.Parameter);
        Assert.Contains(file, e.Message);
    }

    [Fact]
    public void Max_steps_below_the_checkpoint_is_an_input_error_not_damage()
    {
        InterruptedRun();
        var e = Assert.Throws<InputError>(() => LanguageModelRun.Resume(dir, maxSteps: 3).Execute(new SilentProgress(), CancellationToken.None));
        Assert.Equal(TrainParameters.MaxSteps, e.Parameter);
        Assert.Contains("step of the run's checkpoint, 4", e.Message);
        // The refused attempt changed nothing: a plain resume still continues from step 4.
        var resumed = LanguageModelRun.Resume(dir).Execute(new SilentProgress(), CancellationToken.None);
        Assert.Equal(4, resumed.Resumed!.Step);
        Assert.Empty(resumed.Resumed.Skipped);
    }

    /// <summary>Reports a finite loss but fills the first trainable tensor with NaN at one step: damage only the weights show.</summary>
    private sealed class PoisonAt(long poisonStep, IReadOnlyList<(string Name, Parameter Parameter)> trainable) : ILearningRule
    {
        public string Name => "poison";
        public RuleCounters Counters { get; } = new();
        public RuleStepResult Step(RuleStep step)
        {
            if (step.Index == poisonStep)
                using (no_grad()) trainable[0].Parameter.fill_(double.NaN);
            return new RuleStepResult(1.0, 1, 0);
        }
        public void Dispose() { }
    }

    [Fact]
    public void Nan_weights_are_never_checkpointed_nor_called_the_last_good_checkpoint()
    {
        manual_seed(3);
        using var model = new LlamaForCausalLM(TinyConfigs.Parse(TinyConfigs.Llama));
        var trainable = SelectionApplier.Apply(model, SharedSelection.CreateParameterSelection(model.Architecture, "full", [], 4, 8, 0.0, ["all-linear"]));
        var data = DataCatalog.TokenSource("fortunes-es", null, TextTokenizers.Create("byte"), 32);
        var store = new CheckpointStore(dir);
        using var rule = new PoisonAt(2, trainable);
        var loop = new TrainingLoop(new LoopOptions(5, 2, 1, new LearningRateSchedule(1e-3, 1e-3, 0, 5), null, 0, 1, 1, 3),
            model, trainable, Optimizers.Create("sgd", trainable, 0, 0, 0.9, 0.95, 1e-8), rule, data, store);

        var result = loop.Run(new SilentProgress(), CancellationToken.None);

        Assert.Equal(LoopStatus.Diverged, result.Status);
        Assert.Equal(2, result.Steps);
        Assert.Contains("this state was not checkpointed", result.Message);
        Assert.Contains($"The last good checkpoint is kept: {Path.Combine(Checkpoints, "step-00000002")}.", result.Message);
        Assert.False(Directory.Exists(Path.Combine(Checkpoints, "step-00000003")));
        Assert.Equal("step-00000002", File.ReadAllText(Path.Combine(Checkpoints, "latest")));
    }
}
