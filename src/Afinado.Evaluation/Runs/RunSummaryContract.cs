using System.Text.Json.Serialization;

namespace Afinado.Evaluation.Runs;

/// <summary>
/// The part of a run's <c>summary.json</c> (schema <c>afinado.run/1</c>) that Evaluation reads for the cost line and
/// the report. Required: what every training run knows at the end. Optional: curves and breakdowns for the figures.
/// </summary>
public sealed record RunSummaryContract
{
    public const string SchemaId = "afinado.run/1";

    [JsonRequired] public required string Schema { get; init; }
    [JsonRequired] public required long TotalParameters { get; init; }
    [JsonRequired] public required long TrainableParameters { get; init; }
    /// <summary>The planner's predicted peak for this job (bytes), null when not planned.</summary>
    public long? PlannedPeakBytes { get; init; }
    /// <summary>Peak memory measured during the run (bytes).</summary>
    public long? MeasuredPeakBytes { get; init; }
    public double? FinalTrainLoss { get; init; }
    public double? FinalValidationLoss { get; init; }
    [JsonRequired] public required long Steps { get; init; }
    [JsonRequired] public required double WallSeconds { get; init; }
    /// <summary>Learning rule that ran (backprop, es, guided-es, dfa), for the report's labels.</summary>
    public string? LearningRule { get; init; }
    /// <summary>Loss curve points, in step order.</summary>
    public IReadOnlyList<LossPoint>? LossCurve { get; init; }
    /// <summary>Planner ledger totals by entry name (weights, gradients, optimizer state, activations, …), bytes.</summary>
    public IReadOnlyDictionary<string, long>? PlannedBreakdown { get; init; }
    /// <summary>Measured bytes by the same entry names, where the trainer can measure them.</summary>
    public IReadOnlyDictionary<string, long>? MeasuredBreakdown { get; init; }
}

public sealed record LossPoint(long Step, double TrainLoss, double? ValidationLoss = null);
