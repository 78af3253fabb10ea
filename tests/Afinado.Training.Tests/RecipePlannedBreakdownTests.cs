using Afinado.Planner.Memory;
using Afinado.Training.Recipes;
using Afinado.Training.Runs;

namespace Afinado.Training.Tests;

/// <summary>The planned breakdown is a run-folder contract (summary.json): built from ledger lines, it keeps its names, order and figures.</summary>
public class RecipePlannedBreakdownTests
{
    private const long Parameters = 784 * 300 + 300 + 300 * 10 + 10;

    [Fact]
    public void Class_split_backprop_breakdown_keeps_names_order_and_figures()
    {
        var o = new ClassSplitTraining { Hidden = 300, BatchSize = 32 };
        var breakdown = RunSummary.Breakdown(ClassSplitRecipe.PlannedLedger(Parameters, o));
        Assert.Equal(
        [
            new("weights", Parameters * 4), new("gradients", Parameters * 4), new("optimizer state (AdamW m, v)", 2 * Parameters * 4),
            new("activations (one batch, fwd+bwd)", 32L * (784 + 2 * 300 + 10) * 4 * 2),
        ], breakdown.ToList());
    }

    [Fact]
    public void Class_split_es_breakdown_keeps_names_order_and_figures()
    {
        var o = new ClassSplitTraining { Hidden = 300, Rule = LearningRule.Es, EsBatch = 100 };
        var breakdown = RunSummary.Breakdown(ClassSplitRecipe.PlannedLedger(Parameters, o));
        Assert.Equal(
        [
            new("weights", Parameters * 4), new("perturbation buffer", Parameters * 4), new("gradient estimate", Parameters * 4),
            new(".grad copy of the estimate", Parameters * 4), new("optimizer state (Adam m, v)", 2 * Parameters * 4),
            new KeyValuePair<string, long>("activations (one forward)", 100L * (784 + 2 * 300 + 10) * 4),
        ], breakdown.ToList());
    }
}
