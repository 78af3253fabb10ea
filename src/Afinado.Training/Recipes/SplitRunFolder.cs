using System.Text.Json;
using Afinado.Planner.Memory;
using Afinado.Training.IO;
using Afinado.Training.Loop;
using Afinado.Training.Runs;
using TorchSharp;
using static TorchSharp.torch;

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

    /// <summary>
    /// Writes the summary of a split's finetune (every parameter trains): its log, the forward passes and positions it
    /// trained on, the planned ledger, and what it measured — the weights and, for a rule with a backward pass, the
    /// gradients the rule held while the optimizer stepped (it drops them at the end of each step). The recipes do not
    /// meter their tensors: <paramref name="processPeakBytes"/> is the whole process's peak resident set, never compared
    /// with a plan.
    /// </summary>
    public static RunSummary WriteSummary(string outDir, RunManifest manifest, nn.Module finetuned, TrainingLog log, string rule, int maxSteps,
        long forwardPasses, long trainPositions, long processPeakBytes, IEnumerable<LedgerEntry> planned, bool measuredGradients)
    {
        long total = finetuned.parameters().Sum(p => p.numel());
        var measured = new Dictionary<string, long> { ["weights"] = finetuned.parameters().Sum(p => p.numel() * p.element_size()) };
        if (measuredGradients) measured["gradients"] = log.PeakGradientBytes;
        var summary = new RunSummary
        {
            Status = "completed",
            Method = "full",
            Rule = rule,
            MaxSteps = maxSteps,
            ForwardPasses = forwardPasses,
            TrainPositions = trainPositions,
            Manifest = manifest,
            TotalParameters = total,
            TrainableParameters = total,
            ProcessPeakBytes = processPeakBytes,
            FinalTrainLoss = log.FinalLoss,
            Steps = log.Steps,
            WallSeconds = log.WallSeconds,
            LossCurve = log.LossCurve,
            PlannedBreakdown = RunSummary.Breakdown(planned),
            MeasuredBreakdown = measured,
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, LanguageModelRun.SummaryFile), JsonSerializer.Serialize(summary, TrainConfig.Json));
        return summary;
    }
}
