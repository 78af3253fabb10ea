using Afinado.Evaluation.Experiments;
using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Afinado.Planner.Memory;
using Xunit.Abstractions;

namespace Afinado.Evaluation.Tests.Experiments;

public sealed class ClassSplitExperimentTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-split-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Backprop_finetune_on_classes_5_to_9_shows_gain_a_measured_tax_on_0_to_4_and_a_calibration_change()
    {
        var options = new ClassSplitOptions { Training = new() { TrainPerClass = 300, FinetuneEpochs = 2 }, TestPerClass = 100, Resamples = 500 };
        var result = SplitRuns.ClassSplit(options, _dir, output.WriteLine);
        output.WriteLine(EvalJson.Serialize(result.Verdict));

        var target = result.Tasks.Single(t => t.Task.Role == TaskRole.Target);
        var retained = result.Tasks.Single(t => t.Task.Role == TaskRole.Retained);
        var score = (TaskEvaluation t, string m) => t.Scores.Single(s => s.Model == m).Score;
        // The base never saw classes 5-9, so it cannot answer them; finetuning learns them.
        Assert.True(score(target, "base") < 0.05, $"base on target {score(target, "base")}");
        Assert.True(score(target, "finetuned") > 0.6, $"finetuned on target {score(target, "finetuned")}");
        Assert.True(target.Change.AboveZero);
        // Finetuning only on 5-9 through a shared 10-way head forgets 0-4: a measured, significant tax with a CI.
        Assert.True(score(retained, "base") > 0.6, $"base on retained {score(retained, "base")}");
        Assert.NotNull(retained.Tax);
        Assert.True(retained.Tax!.AboveZero, $"tax {retained.Tax}");
        Assert.True(retained.Tax.Upper > retained.Tax.Lower);
        // Calibration before and after, with the change's CI.
        Assert.NotNull(retained.EceChange);
        Assert.NotEqual(0, retained.EceChange!.Value);
        Assert.NotNull(result.Forgetting);
        Assert.Equal(retained.Tax.Value, result.Forgetting!.AverageForgetting, 12);
        // The verdict weighs the strongest cheaper alternative, and every reason carries numbers.
        Assert.Contains(result.Verdict.Reasons, r => r.Contains("training only the last layer"));

        // The run folder reads back through the pinned-identity contract.
        var run = RunDirectory.Open(_dir);
        Assert.Equal(result.BaseSha256, run.Manifest.BaseSha256);
        Assert.Equal(PinnedIdentity.Sha256OfFile(Path.Combine(_dir, "base.weights")), run.Manifest.BaseSha256);
        Assert.Equal(4, run.Manifest.DataFiles.Count);
        Assert.Equal(result.ResultKey, run.Evaluation!.ResultKey);
        Assert.Equal(result.Verdict.Headline, run.Evaluation.Verdict.Headline);
        Assert.True(run.Summary!.LossCurve!.Count > 1);
        // The experiment does not meter its tensors: its process peak is not written as a tensor measurement.
        Assert.Null(run.Summary.MeasuredPeakBytes);
        Assert.True(run.Summary.ProcessPeakBytes > 0);
        // Every parameter trains, so the gradients the rule measured at its optimizer step are one fp32 copy of the weights.
        Assert.Equal(run.Summary.MeasuredBreakdown!["weights"], run.Summary.MeasuredBreakdown["gradients"]);
    }

    [Fact]
    public void Evolution_strategies_finetune_without_backprop_also_learns_the_target_and_taxes_the_retained_classes()
    {
        var options = new ClassSplitOptions
        {
            Training = new() { TrainPerClass = 150, Rule = LearningRule.Es, EsGenerations = 30, EsPopulation = 6, EsBatch = 96 },
            TestPerClass = 60, Resamples = 300,
        };
        var result = SplitRuns.ClassSplit(options, _dir, output.WriteLine);
        output.WriteLine(result.Verdict.Headline);
        var target = result.Tasks.Single(t => t.Task.Role == TaskRole.Target);
        var retained = result.Tasks.Single(t => t.Task.Role == TaskRole.Retained);
        Assert.True(target.Change.AboveZero, $"ES target change {target.Change}");
        Assert.True(retained.Tax!.AboveZero, $"ES tax {retained.Tax}");
        Assert.NotNull(retained.EceChange);
        Assert.Equal("es", RunDirectory.Open(_dir).Summary!.Rule);
    }
}
