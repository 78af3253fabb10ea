using System.Globalization;
using Afinado.Evaluation.Metrics;

namespace Afinado.Evaluation.Verdicts;

/// <summary>
/// Decides whether finetuning was needed, in this order (documented in the README):
/// 1. Gain: the finetuned model is compared with the STRONGEST cheaper alternative (base as is, last layer only, …).
///    Unless the 95 % CI of that gain lies above zero and the gain is at least MinRelativeGain of the alternative's
///    score, the verdict is "not needed: use the alternative".
/// 2. Tax: a retained task whose tax CI lies above zero and whose tax exceeds MaxRelativeTax of its base score
///    makes the verdict "not worth the tax".
/// 3. Calibration: an ECE increase above MaxEceIncrease on any task makes it "needed, but recalibrate".
/// 4. Otherwise "needed". The cost is reported in every case; it informs but does not decide.
/// </summary>
public static class VerdictRule
{
    public static Verdict Decide(VerdictInputs inputs, VerdictPolicy? policy = null)
    {
        policy ??= VerdictPolicy.Default;
        if (inputs.Baselines.Count == 0)
            throw new ArgumentException("the verdict needs at least one cheaper alternative (the base model as is)");
        var strongest = inputs.Baselines.MinBy(b => b.Gain.Value)!;
        var reasons = new List<string>();
        foreach (var b in inputs.Baselines)
            reasons.Add(F($"target '{inputs.TargetTask}' ({b.Metric}): finetuned {b.FinetunedScore:0.0000} vs {b.Baseline} {b.BaselineScore:0.0000}, gain {Ci(b.Gain)}"));
        var taxed = inputs.Taxes.Where(t => t.Tax.AboveZero && t.Relative > policy.MaxRelativeTax).OrderByDescending(t => t.Relative).ToList();
        foreach (var t in inputs.Taxes)
            reasons.Add(F($"retained '{t.Task}' ({t.Metric}): {t.BaseScore:0.0000} → {t.FinetunedScore:0.0000}, tax {Ci(t.Tax)} ({t.Relative:+0.0%;-0.0%;0%} of base){(taxed.Contains(t) ? " — above the tolerance" : "")}"));
        var worseCalibration = inputs.Calibration.Where(c => c.Change > policy.MaxEceIncrease).OrderByDescending(c => c.Change).ToList();
        foreach (var c in inputs.Calibration)
            reasons.Add(F($"calibration '{c.Task}': ECE {c.BaseEce:0.0000} → {c.FinetunedEce:0.0000} ({(c.EceChange is { } e ? Ci(e) : F($"{c.Change:+0.0000;-0.0000}"))})"));
        if (inputs.Cost is { } cost) reasons.Add(CostLine(cost));

        var relGain = strongest.Gain.Value / Math.Max(Math.Abs(strongest.BaselineScore), 1e-12);
        var gainText = F($"{Signed(strongest.Gain.Value)} {strongest.Metric} (95% CI {Signed(strongest.Gain.Lower)} … {Signed(strongest.Gain.Upper)}) on '{inputs.TargetTask}' over {strongest.Baseline}");
        var taxText = TaxSummary(inputs.Taxes);
        var calText = CalibrationSummary(inputs.Calibration);

        if (!strongest.Gain.AboveZero || relGain < policy.MinRelativeGain)
        {
            var why = strongest.Gain.AboveZero
                ? F($"the gain is below the {policy.MinRelativeGain:0.#%} minimum")
                : "the gain's 95% CI reaches zero or below";
            return new Verdict(VerdictKind.NotNeeded, $"finetuning is not needed: {gainText}; {why}, so {strongest.Baseline} does the job at lower cost", reasons, policy);
        }
        if (taxed.Count > 0)
        {
            var worst = taxed[0];
            return new Verdict(VerdictKind.NotWorthTheTax,
                F($"finetuning is not worth it as is: {gainText}, but it costs {Signed(worst.Tax.Value)} {worst.Metric} (95% CI {Signed(worst.Tax.Lower)} … {Signed(worst.Tax.Upper)}, {worst.Relative:0.#%} of base) on retained '{worst.Task}', above the {policy.MaxRelativeTax:0.#%} tolerance; mix retained data into training, lower the learning rate, train fewer parameters (LoRA, or a lower LoRA rank and fewer targets when LoRA already ran) or average weights with the base"),
                reasons, policy);
        }
        if (worseCalibration.Count > 0)
        {
            var w = worseCalibration[0];
            return new Verdict(VerdictKind.NeededButRecalibrate,
                F($"finetuning is needed: {gainText}, {taxText}; but calibration got worse on '{w.Task}' (ECE {w.BaseEce:0.000} → {w.FinetunedEce:0.000}): recalibrate (e.g. temperature scaling) before relying on its confidence"),
                reasons, policy);
        }
        return new Verdict(VerdictKind.Needed, $"finetuning is needed: {gainText}, {taxText}, {calText}", reasons, policy);
    }

    private static string TaxSummary(IReadOnlyList<RetainedTax> taxes)
    {
        if (taxes.Count == 0) return "no retained task measured";
        var worst = taxes.MaxBy(t => t.Relative)!;
        return F($"tax at most {Signed(worst.Tax.Value)} {worst.Metric} (95% CI {Signed(worst.Tax.Lower)} … {Signed(worst.Tax.Upper)}) on retained '{worst.Task}'");
    }

    private static string CalibrationSummary(IReadOnlyList<CalibrationChange> changes)
    {
        if (changes.Count == 0) return "calibration not measured";
        return "calibration " + string.Join(", ", changes.Select(c => F($"ECE {c.BaseEce:0.000} → {c.FinetunedEce:0.000} on '{c.Task}'")));
    }

    private static string CostLine(FinetuneCost cost)
    {
        var line = F($"cost: {cost.WallSeconds:0.###} s wall");
        if (cost.PeakBytes is { } peak) line += F($", peak memory {peak / (1024.0 * 1024):0.0} MiB (measured)");
        if (cost.GpuHoursAtScale is { } h) line += F($"; ≈ {h:0.##} GPU-hours for {cost.ScaleModel ?? "the named model"} (compute estimate)");
        return line;
    }

    private static string Ci(Estimate e) => F($"{Signed(e.Value)} (95% CI {Signed(e.Lower)} … {Signed(e.Upper)})");
    private static string Signed(double v) => v.ToString("+0.0000;-0.0000;0.0000", CultureInfo.InvariantCulture);
    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
