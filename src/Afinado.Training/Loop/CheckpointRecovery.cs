using Afinado.Planner;
using Afinado.Training.Checkpoints;

namespace Afinado.Training.Loop;

/// <summary>
/// Picks the checkpoint a resumed run continues from. Damage is never silent: a skipped pointer or folder is reported
/// (progress line and the summary's <c>resumed.skipped</c>), and a run folder whose checkpoints are all damaged, or that
/// has none, is refused rather than restarted from step 0.
/// </summary>
internal static class CheckpointRecovery
{
    public static Checkpoint Open(CheckpointStore store, CheckpointExpectation expect, string runDir, ITrainingProgress progress, out IReadOnlyList<string> skipped)
    {
        var search = store.FindNewestIntact(expect);
        skipped = search.Problems;
        if (search.Found is not { } found)
        {
            if (!search.HasDebris)
                throw new InputError(RunParameters.Resume, $"\"{runDir}\" has no checkpoint to continue from ({store.Root} is missing or empty)",
                    $"The run stopped before its first checkpoint or its checkpoints were deleted; start it again in a new {RunParameters.Out} folder.");
            throw new InputError(RunParameters.Resume, $"no intact checkpoint in {store.Root}: {string.Join("; ", search.Problems)}",
                $"Nothing there can be trusted; restore the checkpoints folder from a backup, or start the run again in a new {RunParameters.Out} folder.");
        }
        if (search.Problems.Count > 0)
            progress.Message($"warning: damaged checkpoint state in {store.Root}: {string.Join("; ", search.Problems)}. " +
                             $"Resuming from the newest intact checkpoint, {found.Name} (step {found.State.Step}).");
        return found;
    }
}
