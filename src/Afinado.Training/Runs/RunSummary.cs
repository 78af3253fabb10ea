using System.Text.Json.Serialization;
using Afinado.Planner.Memory;

namespace Afinado.Training.Runs;

/// <summary>
/// <c>RUN_DIR/summary.json</c>, schema <c>afinado.run/1</c>: the contract scripts and the evaluation read.
/// Losses are mean cross-entropy in nats per predicted position (token or image). This is the ONE summary contract:
/// the trainer and <c>afinado eval</c>'s run folders write it, the report reads it.
/// </summary>
public sealed record RunSummary
{
    public const string SchemaId = "afinado.run/1";

    public string Schema { get; init; } = SchemaId;
    public required string Status { get; init; }
    public string? Message { get; init; }
    public required string Method { get; init; }
    public required string Rule { get; init; }
    public required long TotalParameters { get; init; }
    public required long TrainableParameters { get; init; }
    public long? PlannedPeakBytes { get; init; }
    /// <summary>Tensor memory of the run: the growth of the process's VmHWM over a baseline taken before the model is
    /// built (<see cref="Memory.PeakMeter"/>), the figure <see cref="PlannedPeakBytes"/> predicts.</summary>
    public long? MeasuredPeakBytes { get; init; }
    /// <summary>The whole process's peak resident set (runtime, libtorch and data included), for runs that do not meter
    /// their tensors (the split recipes `afinado eval` scores); never compared with a plan.</summary>
    public long? ProcessPeakBytes { get; init; }
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
    /// <summary>Training loss per step and validation loss where it was evaluated, in step order (the report's loss curves).</summary>
    public IReadOnlyList<LossPoint>? LossCurve { get; init; }
    /// <summary>Planner ledger totals by entry name (weights, gradients, optimizer state, activations, …), bytes.</summary>
    public IReadOnlyDictionary<string, long>? PlannedBreakdown { get; init; }
    /// <summary>Measured bytes by the same entry names, where they can be measured.</summary>
    public IReadOnlyDictionary<string, long>? MeasuredBreakdown { get; init; }
    /// <summary>Set when this invocation resumed the run: the checkpoint it continued from and what was skipped as damaged (why).</summary>
    public ResumeRecord? Resumed { get; init; }

    /// <summary>A ledger as <see cref="PlannedBreakdown"/>: bytes by display name, in ledger order.</summary>
    public static IReadOnlyDictionary<string, long> Breakdown(IEnumerable<LedgerEntry> entries) => entries.ToDictionary(e => e.Name, e => e.RoundedBytes);

    public sealed record ResumeRecord([property: JsonPropertyName("checkpoint")] string Checkpoint, [property: JsonPropertyName("step")] long Step,
        [property: JsonPropertyName("skipped")] IReadOnlyList<string> Skipped);

    public sealed record LossBeforeAfter([property: JsonPropertyName("before")] double Before, [property: JsonPropertyName("after")] double? After);
}

/// <summary>One point of a loss curve: the training loss after <c>Step</c> steps, and the validation loss if evaluated then.</summary>
public sealed record LossPoint(long Step, double TrainLoss, double? ValidationLoss = null);
