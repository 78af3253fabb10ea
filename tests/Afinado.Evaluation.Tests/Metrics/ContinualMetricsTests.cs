using Afinado.Evaluation.Metrics;

namespace Afinado.Evaluation.Tests.Metrics;

public class ContinualMetricsTests
{
    [Fact]
    public void Two_stage_finetune_forgetting_equals_the_drop_on_the_first_task()
    {
        var m = ContinualMetrics.From(new[,] { { 0.9, 0.1 }, { 0.6, 0.95 } });
        Assert.Equal(0.775, m.AverageAccuracy, 12);
        Assert.Equal(-0.3, m.BackwardTransfer, 12);
        Assert.Equal(0.3, m.AverageForgetting, 12);
    }

    [Fact]
    public void Forgetting_measures_from_the_best_earlier_score_while_bwt_measures_from_the_just_trained_score()
    {
        // Task 0 peaks after stage 1 (0.85), not right after its own training (0.8).
        var m = ContinualMetrics.From(new[,] { { 0.8, 0, 0 }, { 0.85, 0.9, 0 }, { 0.6, 0.85, 0.95 } });
        Assert.Equal(0.8, m.AverageAccuracy, 12);
        Assert.Equal(((0.6 - 0.8) + (0.85 - 0.9)) / 2, m.BackwardTransfer, 12);
        Assert.Equal(((0.85 - 0.6) + (0.9 - 0.85)) / 2, m.AverageForgetting, 12);
    }
}
