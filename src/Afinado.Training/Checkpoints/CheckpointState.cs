using Afinado.Training.Runs;
namespace Afinado.Training.Checkpoints;

/// <summary>Scalar state of a run at a checkpoint: where to continue and what has been seen so far.</summary>
public sealed record CheckpointState
{
    /// <summary>Steps completed; the resumed run starts at this step index.</summary>
    public required long Step { get; init; }
    public double? LastTrainLoss { get; init; }
    public double? LastValidationLoss { get; init; }
    public double WallSeconds { get; init; }
    public long ForwardPasses { get; init; }
    public long TrainPositions { get; init; }
    /// <summary>libtorch's CPU generator state (base64). Steps reseed from (seed, step) too; this keeps any other draw exact.</summary>
    public string? TorchRngState { get; init; }
    /// <summary>Loss curve logged so far, so a resumed run's summary holds the whole curve.</summary>
    public IReadOnlyList<LossPoint>? LossCurve { get; init; }
}
