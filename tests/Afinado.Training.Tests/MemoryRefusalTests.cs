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
        // Every fix offered, applied as train flags, plans within the free memory.
        Assert.NotEmpty(e.Fixes);
        foreach (var fix in e.Fixes) Assert.True(Planned(Apply(c, fix)) <= free, $"{fix} does not fit");
    }

    /// <summary>Applies train flags as printed in a fix.</summary>
    private static TrainConfig Apply(TrainConfig c, string fix)
    {
        var w = fix.Split(' ');
        for (int i = 0; i < w.Length; i++)
            c = w[i] switch
            {
                "--gradient-checkpointing" => c with { GradientCheckpointing = true },
                "--method" => c with { Method = TrainVocabulary.Method(w[++i]) },
                "--attention" => c with { Attention = TrainVocabulary.Attention(w[++i]) },
                "--batch" => c with { BatchSize = int.Parse(w[++i]) },
                "--grad-accum" => c with { GradientAccumulation = int.Parse(w[++i]) },
                "--seq" => c with { SequenceLength = int.Parse(w[++i]) },
                _ => throw new InvalidOperationException($"unknown flag in fix: {fix}"),
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

    [Theory]
    [InlineData("--checkpointing full", "--gradient-checkpointing")]
    [InlineData("--batch 2 --grad-accum 4", "--batch 2 --grad-accum 4")]
    [InlineData("--checkpointing full --method lora", "--gradient-checkpointing --method lora")]
    [InlineData("--optimizer adamw-8bit", null)]
    [InlineData("--checkpointing full --method qlora", null)]
    public void Plan_fixes_are_spoken_in_train_flags_or_left_out(string change, string? train) =>
        Assert.Equal(train, CpuPeakPlanner.TrainFlags(change));
}
