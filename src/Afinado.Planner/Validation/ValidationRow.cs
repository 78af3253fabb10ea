namespace Afinado.Planner.Validation;

/// <summary>One ground-truth row with its prediction (null when the row is out of scope).</summary>
public sealed record ValidationRow(string Id, string Scope, string Metric, double? MeasuredBytes, double? PredictedBytes, double? Tolerance, string Note)
{
    public double? RelativeError => PredictedBytes is { } p && MeasuredBytes is { } m && m > 0 ? (p - m) / m : null;
    /// <summary>In-scope rows are asserted: they must be within tolerance.</summary>
    public bool Asserted => Scope is "single-gpu" or "gpu" or "cpu";
    public bool WithinTolerance => RelativeError is { } e && Tolerance is { } t && Math.Abs(e) <= t + 1e-12;
}
