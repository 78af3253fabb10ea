using System.Text.Json.Serialization;

namespace Afinado.Evaluation.Runs;

/// <summary>
/// The part of a run's <c>manifest.json</c> that Evaluation reads (schema <c>afinado.manifest/1</c>). Training writes
/// the file; this record is the contract between the two, so every field here must be present and mean exactly this.
/// Unknown extra fields are ignored. Hashes are lower-case hex SHA-256 of the file contents.
/// </summary>
public sealed record RunManifestContract
{
    public const string SchemaId = "afinado.manifest/1";

    [JsonRequired] public required string Schema { get; init; }
    /// <summary>The weights finetuning started from: a name for people and the content hash that actually identifies them.</summary>
    [JsonRequired] public required PinnedFile BaseWeights { get; init; }
    /// <summary>The weights this run produced (null for a run that only evaluates the base).</summary>
    public PinnedFile? OutputWeights { get; init; }
    /// <summary>Every data file the run read, with its hash.</summary>
    [JsonRequired] public required IReadOnlyList<PinnedFile> Data { get; init; }
    /// <summary>SHA-256 of the resolved training config (the exact bytes written to the run dir).</summary>
    [JsonRequired] public required string ConfigSha256 { get; init; }
    /// <summary>Code version: git commit of the workbench that ran (with <c>-dirty</c> when the tree had changes).</summary>
    [JsonRequired] public required string CodeVersion { get; init; }
    [JsonRequired] public required long Seed { get; init; }
}

/// <summary>A file pinned by content: <c>name</c> is for people (a path or a model id), <c>sha256</c> is the identity.</summary>
public sealed record PinnedFile([property: JsonRequired] string Name, [property: JsonRequired] string Sha256);
