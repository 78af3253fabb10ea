using System.Text.Json.Serialization;

namespace Afinado.Training.Loop;

/// <summary>
/// <c>RUN_DIR/summary.json</c>, schema <c>afinado.run/1</c>: the contract scripts and the evaluation read.
/// Losses are mean cross-entropy in nats per predicted position (token or image).
/// </summary>
public sealed record RunSummary
{
    public string Schema { get; init; } = "afinado.run/1";
    public required string Status { get; init; }
    public string? Message { get; init; }
    public required string Method { get; init; }
    public required string Rule { get; init; }
    public required long TotalParameters { get; init; }
    public required long TrainableParameters { get; init; }
    public long? PlannedPeakBytes { get; init; }
    public long? MeasuredPeakBytes { get; init; }
    /// <summary>(measured − planned) / planned, when both exist.</summary>
    public double? PeakError { get; init; }
    public required long Steps { get; init; }
    public required int MaxSteps { get; init; }
    public double? InitialTrainLoss { get; init; }
    public double? FinalTrainLoss { get; init; }
    public double? InitialValidationLoss { get; init; }
    public double? FinalValidationLoss { get; init; }
    public double? FinalValidationAccuracy { get; init; }
    /// <summary>Validation loss on other data before and after (e.g. English while finetuning on Spanish: the alignment tax).</summary>
    public IReadOnlyDictionary<string, LossBeforeAfter> ExtraValidation { get; init; } = new Dictionary<string, LossBeforeAfter>();
    public required double WallSeconds { get; init; }
    public required long ForwardPasses { get; init; }
    public required long TrainPositions { get; init; }
    public double? PositionsPerSecond { get; init; }
    /// <summary>Folder with the exported model (merged weights + config.json), when the run completed.</summary>
    public string? ModelDir { get; init; }
    public required RunManifest Manifest { get; init; }

    public sealed record LossBeforeAfter([property: JsonPropertyName("before")] double Before, [property: JsonPropertyName("after")] double? After);
}
