namespace Afinado.Training.Checkpoints;

/// <summary>
/// Result of looking for a checkpoint to resume from. <paramref name="Found"/> is null when none is intact;
/// <paramref name="Problems"/> lists every pointer or folder that was skipped, with why ("step-00000040 trainable.safetensors
/// does not match its SHA-256 …"); <paramref name="HasDebris"/> says whether the checkpoints folder holds anything at all.
/// </summary>
public sealed record CheckpointSearch(Checkpoint? Found, IReadOnlyList<string> Problems, bool HasDebris);
