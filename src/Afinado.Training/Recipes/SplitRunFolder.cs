using System.Text.Json;
using Afinado.Training.IO;
using Afinado.Training.Loop;
using Afinado.Training.Runs;

namespace Afinado.Training.Recipes;

/// <summary>
/// The run contract the split recipes write beside their weights, in the trainer's JSON style: <c>config.json</c> (the
/// recipe's resolved settings), <c>manifest.json</c> (afinado.manifest/1, the config's hash among the pinned files) and
/// <c>summary.json</c> (afinado.run/1). Each file is written whole or not at all.
/// </summary>
internal static class SplitRunFolder
{
    public const string ConfigFile = "config.json";

    /// <summary>Writes the settings and returns the manifest that pins them with the weights and data.</summary>
    public static RunManifest WriteConfigAndManifest<TSettings>(string outDir, TSettings settings, IEnumerable<RunManifest.FileHash> baseWeights,
        IEnumerable<string> outputWeights, IEnumerable<string> dataFiles, long seed)
    {
        var configPath = Path.Combine(outDir, ConfigFile);
        AtomicFile.WriteAllText(configPath, JsonSerializer.Serialize(settings, TrainConfig.Json));
        var data = dataFiles.Distinct().Select(f => RunManifest.Hash(Path.GetFullPath(f))).ToList();
        var manifest = new RunManifest
        {
            BaseWeights = baseWeights.ToList(),
            OutputWeights = outputWeights.Select(f => RunManifest.Hash(Path.GetFullPath(f))).ToList(),
            DataFiles = data,
            DataSha256 = RunManifest.DataDigest(data),
            ConfigSha256 = RunManifest.Hash(configPath).Sha256,
            CodeVersion = RunManifest.CodeVersionString(),
            Seed = seed,
            CreatedUtc = DateTime.UtcNow.ToString("O"),
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, LanguageModelRun.ManifestFile), JsonSerializer.Serialize(manifest, TrainConfig.Json));
        return manifest;
    }

    public static void WriteSummary(string outDir, RunSummary summary) =>
        AtomicFile.WriteAllText(Path.Combine(outDir, LanguageModelRun.SummaryFile), JsonSerializer.Serialize(summary, TrainConfig.Json));
}
