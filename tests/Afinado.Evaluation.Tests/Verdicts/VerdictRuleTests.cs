using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation.Tests.Verdicts;

public class VerdictRuleTests
{
    private static Estimate Ci(double value, double halfWidth) => new(value, value - halfWidth, value + halfWidth, 0.95, 2000);

    private static VerdictInputs Case(double gain, double gainHalf, double tax, double taxHalf, double baseEce = 0.05, double ftEce = 0.06) => new(
        "classes 5-9",
        [
            new BaselineGain("the base model as is", "accuracy", 0.10, 0.10 + gain + 0.02, Ci(gain + 0.02, gainHalf)),
            new BaselineGain("last layer only", "accuracy", 0.60, 0.60 + gain, Ci(gain, gainHalf)),
        ],
        [new RetainedTax("classes 0-4", "accuracy", 0.90, 0.90 - tax, Ci(tax, taxHalf))],
        [new CalibrationChange("classes 5-9", baseEce, ftEce, null)],
        new FinetuneCost(12.5, 300L << 20, 42, "meta-llama/Llama-3.1-8B"));

    [Fact]
    public void Large_gain_and_no_tax_means_needed()
    {
        var v = VerdictRule.Decide(Case(gain: 0.25, gainHalf: 0.03, tax: 0.002, taxHalf: 0.01));
        Assert.Equal(VerdictKind.Needed, v.Kind);
        Assert.StartsWith("finetuning is needed: +0.2500 accuracy (95% CI +0.2200 … +0.2800)", v.Headline);
        Assert.Contains("over last layer only", v.Headline); // judged against the strongest cheaper alternative
        Assert.Contains(v.Reasons, r => r.Contains("42 GPU-hours for meta-llama/Llama-3.1-8B"));
        Assert.Contains(v.Reasons, r => r.Contains("300.0 MiB"));
    }

    [Fact]
    public void No_significant_gain_means_not_needed()
    {
        var v = VerdictRule.Decide(Case(gain: 0.01, gainHalf: 0.02, tax: 0, taxHalf: 0.01));
        Assert.Equal(VerdictKind.NotNeeded, v.Kind);
        Assert.StartsWith("finetuning is not needed", v.Headline);
        Assert.Contains("last layer only does the job", v.Headline);
    }

    [Fact]
    public void Significant_but_tiny_gain_is_still_not_needed()
    {
        var v = VerdictRule.Decide(Case(gain: 0.003, gainHalf: 0.001, tax: 0, taxHalf: 0.01));
        Assert.Equal(VerdictKind.NotNeeded, v.Kind);
        Assert.Contains("below the 1% minimum", v.Headline);
    }

    [Fact]
    public void Gain_with_a_large_significant_tax_is_not_worth_it()
    {
        var v = VerdictRule.Decide(Case(gain: 0.25, gainHalf: 0.03, tax: 0.30, taxHalf: 0.04));
        Assert.Equal(VerdictKind.NotWorthTheTax, v.Kind);
        Assert.Contains("'classes 0-4'", v.Headline);
        Assert.Contains("+0.3000 accuracy", v.Headline);
    }

    [Fact]
    public void A_large_tax_whose_ci_reaches_zero_does_not_block()
    {
        var v = VerdictRule.Decide(Case(gain: 0.25, gainHalf: 0.03, tax: 0.05, taxHalf: 0.06));
        Assert.Equal(VerdictKind.Needed, v.Kind);
    }

    [Fact]
    public void Worse_calibration_means_needed_but_recalibrate()
    {
        var v = VerdictRule.Decide(Case(gain: 0.25, gainHalf: 0.03, tax: 0, taxHalf: 0.01, baseEce: 0.02, ftEce: 0.15));
        Assert.Equal(VerdictKind.NeededButRecalibrate, v.Kind);
        Assert.Contains("ECE 0.020 → 0.150", v.Headline);
    }

    [Fact]
    public void Loss_metrics_use_the_same_rule_relative_to_the_base_score()
    {
        // Per-token loss: gain = base loss − finetuned loss; tax = finetuned loss − base loss.
        var inputs = new VerdictInputs("spanish", [new BaselineGain("the base model as is", "loss/token", 4.0, 3.2, Ci(0.8, 0.05))],
            [new RetainedTax("computers", "loss/token", 3.0, 3.03, Ci(0.03, 0.01))], [], null);
        Assert.Equal(VerdictKind.Needed, VerdictRule.Decide(inputs).Kind); // 1 % tax < 2 % tolerance
        var strict = VerdictRule.Decide(inputs, new VerdictPolicy(MaxRelativeTax: 0.005));
        Assert.Equal(VerdictKind.NotWorthTheTax, strict.Kind);
    }
}

public class ScaleCostEstimateTests
{
    [Fact]
    public void Gpu_hours_follow_six_p_d_over_sustained_flops_for_a_catalog_model()
    {
        var (hours, name, parameters) = ScaleCostEstimate.ForTokens("meta-llama/Llama-3.1-8B", 1_000_000, 150);
        Assert.InRange(parameters, 8.0e9, 8.06e9); // Llama-3.1-8B: 8.03 B parameters
        Assert.Equal(6.0 * parameters * 1_000_000 / 150e12 / 3600, hours, 12);
        Assert.Contains("Llama", name);
        Assert.Throws<InputError>(() => ScaleCostEstimate.ForTokens("meta-llama/Llama-3.1-8B", 1, 0));
    }
}
