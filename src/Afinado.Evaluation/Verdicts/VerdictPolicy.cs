namespace Afinado.Evaluation.Verdicts;

/// <summary>
/// Thresholds of the finetune-or-not rule (README "Was it worth it? The verdict rule"). Gains and taxes are relative to
/// the score they change from, so one policy serves accuracies and per-token losses alike.
/// </summary>
/// <param name="MinRelativeGain">The target gain over the strongest cheaper alternative must be at least this fraction of that alternative's score (default 1 %).</param>
/// <param name="MaxRelativeTax">A retained task may lose up to this fraction of its base score (default 2 %) before the tax blocks the finetune.</param>
/// <param name="MaxEceIncrease">An absolute ECE increase above this (default 0.03) on any task is flagged as a calibration tax.</param>
public sealed record VerdictPolicy(double MinRelativeGain = 0.01, double MaxRelativeTax = 0.02, double MaxEceIncrease = 0.03)
{
    public static readonly VerdictPolicy Default = new();
}
