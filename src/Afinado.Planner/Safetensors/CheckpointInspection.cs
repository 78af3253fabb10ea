using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;

namespace Afinado.Planner.Safetensors;

/// <summary>
/// What <c>afinado inspect</c> computes: the checkpoint's headers and, when a config is known, how they compare with
/// the architecture it describes. The config is <paramref name="ConfigSource"/>: the one given explicitly, else the
/// <c>config.json</c> beside the checkpoint; none for a lone shard of a sharded checkpoint (it holds only part of the model).
/// </summary>
public sealed record CheckpointInspection(SafetensorsCheckpoint Checkpoint, string? ConfigSource, ModelArchitecture? Architecture, CheckpointComparison? Comparison)
{
    /// <summary>Why the config beside the checkpoint was not compared (its model has linear-attention or state-space
    /// layers, which no architecture here describes); null when it was compared or there was none.</summary>
    public string? ConfigNotCompared { get; init; }

    /// <summary>True unless a config was found and the checkpoint disagrees with it.</summary>
    public bool Consistent => Comparison is null or { Matches: true };

    /// <param name="path">A .safetensors file, an index.json, or a folder.</param>
    /// <param name="config">Optional catalog id, config.json or folder to compare against.</param>
    public static CheckpointInspection Run(string path, string? config = null)
    {
        var checkpoint = SafetensorsCheckpoint.Open(path);
        var (source, arch, notCompared) = FindConfig(checkpoint, config);
        return new CheckpointInspection(checkpoint, source, arch, arch is null ? null : CheckpointComparison.Compare(arch, checkpoint.Tensors))
            { ConfigNotCompared = notCompared };
    }

    private static (string? Source, ModelArchitecture? Arch, string? NotCompared) FindConfig(SafetensorsCheckpoint checkpoint, string? explicitConfig)
    {
        if (explicitConfig is not null) return (explicitConfig, ModelSource.Resolve(explicitConfig), null);
        if (checkpoint.IsLoneShard) return (null, null, null);
        var beside = Path.Combine(checkpoint.Folder, "config.json");
        if (!File.Exists(beside)) return (null, null, null);
        // The headers stand on their own: a hybrid's config is named and skipped, not an error that hides them.
        if (HfConfigReader.RecurrentLayersIn(beside, checkpoint.Tensors.Select(t => t.Name)) is { } why)
            return (beside, null, $"{why}: {RecurrentLayers.NotModelled}");
        return (beside, HfConfigReader.ReadFile(beside), null);
    }
}
