namespace Afinado.Cli;

/// <summary>Turns a file-system exception into the one-line message the CLI prints.</summary>
internal static class IoFailure
{
    // errno values .NET puts in IOException.HResult on Linux for a full disk or exceeded quota.
    private const int Enospc = 28;
    private const int Edquot = 122;

    public static bool IsDiskFull(IOException e) =>
        e.HResult is Enospc or Edquot || (e.InnerException is IOException inner && IsDiskFull(inner));

    public static string Describe(IOException e)
    {
        if (!IsDiskFull(e)) return e.Message;
        var text = "the disk is full: " + e.Message.TrimEnd('.');
        // A failed checkpoint already says what to do (free space, then --resume).
        return e is Afinado.Training.Loop.CheckpointWriteException ? text + "." : text + ". Free some space and try again.";
    }
}
