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

    /// <summary>The manifest of an evaluation run folder: the same <c>afinado.manifest/1</c> the trainer writes.</summary>
    public static RunManifest Manifest(IEnumerable<RunManifest.FileHash> baseWeights, IEnumerable<string> outputWeights, IEnumerable<string> dataFiles,
        string configPath, long seed, string codeVersion)
    {
        var data = dataFiles.Distinct().Select(f => RunManifest.Hash(Path.GetFullPath(f))).ToList();
        return new RunManifest
        {
            BaseWeights = baseWeights.ToList(),
            OutputWeights = outputWeights.Select(f => RunManifest.Hash(Path.GetFullPath(f))).ToList(),
            DataFiles = data,
            DataSha256 = RunManifest.DataDigest(data),
            ConfigSha256 = PinnedIdentity.Sha256OfFile(configPath),
            CodeVersion = codeVersion,
            Seed = seed,
            CreatedUtc = DateTime.UtcNow.ToString("O"),
        };
    }
}
