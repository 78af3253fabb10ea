using Afinado.Evaluation.Runs;
using Afinado.Training.Loop;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Experiments;

/// <summary>Writes the three contract files of a run folder (the shared Training contract, Evaluation's JSON style).</summary>
internal static class RunFolderWriter
{
    public static void Write(string outDir, RunManifest manifest, RunSummary summary, EvaluationResult result)
    {
        File.WriteAllText(Path.Combine(outDir, RunDirectory.ManifestFile), EvalJson.Serialize(manifest));
        File.WriteAllText(Path.Combine(outDir, RunDirectory.SummaryFile), EvalJson.Serialize(summary));
        File.WriteAllText(Path.Combine(outDir, RunDirectory.EvaluationFile), EvalJson.Serialize(result));
    }
}
