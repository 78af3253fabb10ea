namespace Afinado.Planner.Validation;

/// <summary>One ground-truth row with its prediction (null when the row is out of scope).</summary>
public sealed record ValidationRow(string Id, string Scope, string Metric, double? MeasuredBytes, double? PredictedBytes, double? Tolerance, string Note)
{
    /// <summary>A published claim that a job runs within some memory ("gpt-oss-20b runs within 16 GB"), not a measurement:
    /// the predicted total must not exceed it, and the row has no error to add to the medians.</summary>
    public const string FitsWithin = "fits-within";

    public bool IsBound => Metric == FitsWithin;
    public double? RelativeError => !IsBound && PredictedBytes is { } p && MeasuredBytes is { } m && m > 0 ? (p - m) / m : null;
    /// <summary>For a bound row, the memory the claim leaves above the predicted total (negative: the planner says it does not fit).</summary>
    public double? HeadroomBytes => IsBound && PredictedBytes is { } p && MeasuredBytes is { } m ? m - p : null;
    /// <summary>In-scope rows are asserted: they must be within tolerance.</summary>
    public bool Asserted => Scope is "single-gpu" or "gpu" or "cpu";
    public bool WithinTolerance => IsBound ? HeadroomBytes >= 0 : RelativeError is { } e && Tolerance is { } t && Math.Abs(e) <= t + 1e-12;
}
