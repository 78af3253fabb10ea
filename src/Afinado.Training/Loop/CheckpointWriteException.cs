namespace Afinado.Training.Loop;

/// <summary>
/// A checkpoint could not be written (disk full, folder removed). Still an <see cref="IOException"/> with the cause's
/// HResult (the errno, e.g. ENOSPC), so callers can tell a full disk apart; the message names the checkpoint kept.
/// </summary>
public sealed class CheckpointWriteException : IOException
{
    public CheckpointWriteException(string message, IOException inner) : base(message, inner) => HResult = inner.HResult;
}
