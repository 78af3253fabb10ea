using Afinado.Evaluation.Metrics;

namespace Afinado.Evaluation.Verdicts;

/// <summary>
/// The finetuned model's advantage over one cheaper alternative on the target task, in the metric's own units and
/// oriented so that positive means the finetuned model is better (accuracy up, or loss down).
/// </summary>
public sealed record BaselineGain(string Baseline, string Metric, double BaselineScore, double FinetunedScore, Estimate Gain);

/// <summary>The alignment tax on one retained task: base score minus finetuned score, oriented so positive means worse.</summary>
public sealed record RetainedTax(string Task, string Metric, double BaseScore, double FinetunedScore, Estimate Tax)
{
    /// <summary>Tax relative to the base score (0.05 = 5 % worse).</summary>
    public double Relative => Tax.Value / Math.Max(Math.Abs(BaseScore), 1e-12);
}

/// <summary>Expected calibration error before and after finetuning on one task, with a CI on the change.</summary>
public sealed record CalibrationChange(string Task, double BaseEce, double FinetunedEce, Estimate? EceChange)
{
    public double Change => FinetunedEce - BaseEce;
}

/// <summary>What the finetune cost: measured wall time and peak memory, and optionally the planner's estimate at real scale.</summary>
public sealed record FinetuneCost(double WallSeconds, long? PeakBytes, double? GpuHoursAtScale = null, string? ScaleModel = null);

public sealed record VerdictInputs(
    string TargetTask,
    IReadOnlyList<BaselineGain> Baselines,
    IReadOnlyList<RetainedTax> Taxes,
    IReadOnlyList<CalibrationChange> Calibration,
    FinetuneCost? Cost);
