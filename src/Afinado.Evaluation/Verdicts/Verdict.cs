namespace Afinado.Evaluation.Verdicts;

public enum VerdictKind
{
    /// <summary>Significant target gain over every cheaper alternative, tolerable tax, calibration kept.</summary>
    Needed,
    /// <summary>As <see cref="Needed"/>, but calibration got notably worse: recalibrate before use.</summary>
    NeededButRecalibrate,
    /// <summary>The target gained, but a retained task lost more than the tolerance.</summary>
    NotWorthTheTax,
    /// <summary>No significant target gain over the cheaper alternative: use it instead.</summary>
    NotNeeded,
}

/// <summary>The recommendation: one headline sentence and the reasons behind it, one line each.</summary>
public sealed record Verdict(VerdictKind Kind, string Headline, IReadOnlyList<string> Reasons, VerdictPolicy Policy);
