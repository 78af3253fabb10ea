using Afinado.Evaluation.Experiments;
using Afinado.Evaluation.Runs;
using Afinado.Evaluation.Tasks;
using Xunit.Abstractions;

namespace Afinado.Evaluation.Tests.Experiments;

public sealed class FortuneSplitExperimentTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-fortunes-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Spanish_finetune_lowers_spanish_loss_and_taxes_the_english_categories_with_cis()
    {
        var options = new FortuneSplitOptions
        {
            Training = new() { TrainItemsPerTask = 80, TestItemsPerTask = 25, MaxTokens = 120, BaseSteps = 120, FinetuneSteps = 60 },
            Resamples = 300,
        };
        var result = SplitRuns.FortuneSplit(options, _dir, output.WriteLine);
        output.WriteLine(result.Verdict.Headline);
        foreach (var r in result.Verdict.Reasons) output.WriteLine(r);

        var target = result.Tasks.Single(t => t.Task.Role == TaskRole.Target);
        Assert.Equal("loss/token", target.Task.Metric);
        Assert.True(target.Change.BelowZero, $"spanish loss change {target.Change}"); // loss went down
        var retained = result.Tasks.Where(t => t.Task.Role == TaskRole.Retained).ToList();
        Assert.Equal(3, retained.Count);
        Assert.All(retained, t => Assert.True(t.Tax!.AboveZero, $"{t.Task.Name} tax {t.Tax}")); // English loss went up
        Assert.All(result.Tasks, t => Assert.NotNull(t.EceChange));
        Assert.Equal(retained.Average(t => t.Tax!.Value), result.Forgetting!.AverageForgetting, 12);
        var run = RunDirectory.Open(_dir);
        Assert.Contains(run.Manifest.DataFiles, d => d.Path.EndsWith("/computers", StringComparison.Ordinal));
        Assert.Contains(run.Manifest.DataFiles, d => d.Path.Contains("/es/", StringComparison.Ordinal));
        // Every parameter trains, so the gradients the rule measured at its optimizer step are one fp32 copy of the weights.
        Assert.Equal(run.Summary!.MeasuredBreakdown!["weights"], run.Summary.MeasuredBreakdown["gradients"]);
    }
}
