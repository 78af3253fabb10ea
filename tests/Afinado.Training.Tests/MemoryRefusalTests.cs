using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Afinado.Planner;
using Afinado.Training.Loop;
using Afinado.Training.Selection;

namespace Afinado.Training.Tests;

/// <summary>Issue 15: a run the plan says cannot fit this machine's free RAM is refused before anything is allocated.</summary>
[Collection(nameof(SerialCollection))]
public class MemoryRefusalTests
{
    private static long Planned(TrainConfig c)
    {
        var arch = TinyConfigs.Parse(c.ModelConfigJson);
        var selection = SharedSelection.CreateParameterSelection(arch, c.Method, c.Freeze, c.LoraRank, c.LoraAlpha, c.LoraDropout, c.LoraTargets);
        return new CpuPeakPlanner().PlanPeakBytes(new PeakPlanRequest(arch, selection, c))!.Value;
    }

    [Fact]
    public void A_run_above_free_memory_is_refused_with_fixes_that_fit_and_leaves_no_run_folder()
    {
        var c = RunTests.TinyRun(2) with { Method = TrainingMethod.Full, BatchSize = 8 };
        long need = Planned(c);
        long free = need * 9 / 10;
        var dir = Path.Combine(Path.GetTempPath(), $"afinado-refuse-{Guid.NewGuid():N}");
        var run = new LanguageModelRun(c, dir) { AvailableMemory = () => free };
        var e = Assert.Throws<DoesNotFitError>(() => run.Execute(new SilentProgress(), CancellationToken.None));
        Assert.Contains("MiB free", e.Message);
        Assert.False(Directory.Exists(dir), "the refusal must come before the run folder is created");
        // Every fix offered, applied to the run's config, plans within the free memory.
        Assert.NotEmpty(e.Fixes);
        foreach (var fix in e.Fixes) Assert.True(Planned(Apply(c, fix)) <= free, $"{fix} does not fit");
    }

    /// <summary>Applies a fix's settings (the trainer's config keys) to the config.</summary>
    private static TrainConfig Apply(TrainConfig c, ParameterChange fix)
    {
        foreach (var (p, v) in fix.Settings)
            c = p switch
            {
                _ when p == TrainParameters.GradientCheckpointing => c with { GradientCheckpointing = true },
                _ when p == TrainParameters.Method => c with { Method = TrainVocabulary.Method(v!) },
                _ when p == TrainParameters.Attention => c with { Attention = TrainVocabulary.Attention(v!) },
                _ when p == TrainParameters.BatchSize => c with { BatchSize = int.Parse(v!) },
                _ when p == TrainParameters.GradientAccumulation => c with { GradientAccumulation = int.Parse(v!) },
                _ when p == TrainParameters.SequenceLength => c with { SequenceLength = int.Parse(v!) },
                _ => throw new InvalidOperationException($"unknown parameter in fix: {fix}"),
            };
        return c;
    }

    [Fact]
    public void A_run_within_free_memory_goes_ahead()
    {
        var c = RunTests.TinyRun(1);
        var dir = Path.Combine(Path.GetTempPath(), $"afinado-refuse-{Guid.NewGuid():N}");
        try
        {
            var summary = new LanguageModelRun(c, dir) { AvailableMemory = () => Planned(c) }.Execute(new SilentProgress(), CancellationToken.None);
            Assert.Equal(1, summary.Steps);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    private static readonly Setting CheckpointingFull = new(JobParameters.Checkpointing, "full");

    public static TheoryData<ParameterChange, ParameterChange?> PlanFixes => new()
    {
        { new(CheckpointingFull), new(new Setting(TrainParameters.GradientCheckpointing)) },
        { new(new(JobParameters.Batch, "2"), new(JobParameters.GradAccumulation, "4")), new(new(TrainParameters.BatchSize, "2"), new(TrainParameters.GradientAccumulation, "4")) },
        { new(CheckpointingFull, new(JobParameters.Method, "lora")), new(new(TrainParameters.GradientCheckpointing), new(TrainParameters.Method, "lora")) },
        { new(new Setting(JobParameters.Optimizer, "adamw-8bit")), null },
        { new(CheckpointingFull, new(JobParameters.Method, "qlora")), null },
    };

    [Theory]
    [MemberData(nameof(PlanFixes))]
    public void Plan_fixes_are_spoken_in_train_config_keys_or_left_out(ParameterChange change, ParameterChange? train) =>
        Assert.Equal(train, CpuPeakPlanner.TrainChange(change));
}
