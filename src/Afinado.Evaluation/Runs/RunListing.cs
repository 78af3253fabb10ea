using Afinado.Planner;

namespace Afinado.Evaluation.Runs;

/// <summary>One run folder as a list of runs shows it: what ran, how it ended, the loss and the verdict when evaluated.
/// <see cref="Problem"/> names what is wrong with a folder that cannot be read (the list still shows the others).</summary>
public sealed record RunListEntry(string Name, string? Status, string? Method, long? Steps, int? MaxSteps, double? InitialValidationLoss,
    double? FinalTrainLoss, double? FinalValidationLoss, long? PlannedPeakBytes, long? MeasuredPeakBytes, string? Verdict, string? Problem);

/// <summary>The runs directly inside a folder (each a folder with <c>manifest.json</c>), read as <see cref="RunDirectory"/> reads them.</summary>
public static class RunListing
{
    public static IReadOnlyList<RunListEntry> List(string folder)
    {
        var entries = new List<RunListEntry>();
        foreach (var dir in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            // Only folders that claim to be runs; a report or figures folder beside them is not one.
            if (!File.Exists(Path.Combine(dir, RunDirectory.ManifestFile))) continue;
            string name = Path.GetFileName(dir);
            try
            {
                var run = RunDirectory.Open(dir);
                var s = run.Summary;
                entries.Add(new RunListEntry(name, s?.Status, s?.Method, s?.Steps, s?.MaxSteps, s?.InitialValidationLoss, s?.FinalTrainLoss,
                    s?.FinalValidationLoss, s?.PlannedPeakBytes, s?.MeasuredPeakBytes, run.Evaluation?.Verdict.Headline, null));
            }
            catch (InputError e)
            {
                entries.Add(new RunListEntry(name, null, null, null, null, null, null, null, null, null, null, e.Message));
            }
        }
        return entries;
    }

    /// <summary>True when <paramref name="name"/> names a run folder directly inside <paramref name="folder"/> (no path
    /// separators, no dot segments): what a page may pass to the report builder.</summary>
    public static bool IsRunName(string folder, string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', '\0']) < 0
        && File.Exists(Path.Combine(folder, name, RunDirectory.ManifestFile));
}
