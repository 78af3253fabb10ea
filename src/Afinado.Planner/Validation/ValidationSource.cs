namespace Afinado.Planner.Validation;

/// <summary>The rows of one ground-truth file (or one comparison drawn from it) and their error summaries.</summary>
public sealed record ValidationSource(string Name, string File, IReadOnlyList<ValidationRow> Rows)
{
    private IEnumerable<double> Errors => Rows.Where(r => r.Asserted && r.RelativeError is not null).Select(r => Math.Abs(r.RelativeError!.Value));
    /// <summary>Asserted rows that are measurements (not the exact KV-per-token test vectors).</summary>
    private IEnumerable<double> MeasuredErrors => Rows.Where(r => r.Asserted && r.RelativeError is not null && r.Metric != "kv-bytes-per-token").Select(r => Math.Abs(r.RelativeError!.Value));
    /// <summary>Every predicted row, including those marked unmet (predicted and reported, not asserted).</summary>
    private IEnumerable<double> AllPredictedErrors => Rows.Where(r => r.RelativeError is not null).Select(r => Math.Abs(r.RelativeError!.Value));
    public int Predicted => Errors.Count();
    public double? MedianAbsError => Median(Errors.ToList());
    public double? WorstAbsError => Errors.Any() ? Errors.Max() : null;
    public int MeasuredPredicted => MeasuredErrors.Count();
    public double? MedianAbsErrorMeasured => Median(MeasuredErrors.ToList());
    public int AllPredicted => AllPredictedErrors.Count();
    public double? MedianAbsErrorAllPredicted => Median(AllPredictedErrors.ToList());
    public double? WorstAbsErrorAllPredicted => AllPredictedErrors.Any() ? AllPredictedErrors.Max() : null;
    public int Failures => Rows.Count(r => r.Asserted && !r.WithinTolerance);
    /// <summary>Asserted published claims checked as bounds (<see cref="ValidationRow.FitsWithin"/>), and how many hold.</summary>
    public int Bounds => Rows.Count(r => r.Asserted && r.IsBound);
    public int BoundsMet => Rows.Count(r => r.Asserted && r.IsBound && r.WithinTolerance);

    private static double? Median(List<double> xs)
    {
        if (xs.Count == 0) return null;
        xs.Sort();
        return xs.Count % 2 == 1 ? xs[xs.Count / 2] : (xs[xs.Count / 2 - 1] + xs[xs.Count / 2]) / 2;
    }
}
