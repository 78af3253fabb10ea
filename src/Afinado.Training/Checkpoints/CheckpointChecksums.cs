using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Afinado.Training.Loop;
using Afinado.Planner;
using Afinado.Planner.Inputs;

namespace Afinado.Training.Checkpoints;

/// <summary>
/// <c>checksums.json</c> of a checkpoint folder: SHA-256 and size of every data file, the step and the run it belongs to.
/// It is written last into the temporary folder, before the folder is renamed into place, so every folder in place has
/// one; it is checked before anything else in the folder is parsed, so a flipped bit or a truncated file never reaches
/// the model.
/// </summary>
public sealed record CheckpointChecksums
{
    public const string FileName = "checksums.json";
    public const string SchemaId = "afinado.checkpoint/1";
    /// <summary>The files a checkpoint consists of; each must be listed and match.</summary>
    public static readonly IReadOnlyList<string> DataFiles = ["trainable.safetensors", "optimizer.safetensors", "state.json"];

    public string Schema { get; init; } = SchemaId;
    public required long Step { get; init; }
    /// <summary>The run's identity (its manifest's <c>config_sha256</c>); null when the store was opened without one.</summary>
    public string? Run { get; init; }
    public required IReadOnlyDictionary<string, FileDigest> Files { get; init; }

    public sealed record FileDigest([property: JsonPropertyName("sha256")] string Sha256, [property: JsonPropertyName("bytes")] long Bytes);

    /// <summary>Hashes the data files of <paramref name="dir"/> and writes (fsync'ed) its <c>checksums.json</c>.</summary>
    public static void Write(string dir, long step, string? run)
    {
        var sums = new CheckpointChecksums { Step = step, Run = run, Files = DataFiles.ToDictionary(f => f, f => Digest(Path.Combine(dir, f))) };
        using var fs = new FileStream(Path.Combine(dir, FileName), FileMode.Create, FileAccess.Write, FileShare.None);
        JsonSerializer.Serialize(fs, sums, TrainConfig.Json);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Checks every data file of <paramref name="dir"/> against its <c>checksums.json</c>; throws <see cref="CheckpointDamagedException"/>.</summary>
    public static CheckpointChecksums Verify(string dir, string? run)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) throw new CheckpointDamagedException($"has no {FileName} (an interrupted copy, or written by an afinado without checksums)");
        var sums = ReadJson<CheckpointChecksums>(path);
        if (sums.Schema != SchemaId) throw new CheckpointDamagedException($"{FileName} has schema \"{sums.Schema}\", not {SchemaId}");
        if (run is not null && sums.Run != run)
            throw new CheckpointDamagedException($"belongs to another run (config SHA-256 {sums.Run ?? "none"}, this run's is {run})");
        foreach (var f in DataFiles)
        {
            if (sums.Files is null || !sums.Files.TryGetValue(f, out var want) || want is null) throw new CheckpointDamagedException($"{FileName} does not list {f}");
            var file = new FileInfo(Path.Combine(dir, f));
            if (!file.Exists) throw new CheckpointDamagedException($"{f} is missing");
            if (file.LinkTarget is not null) throw new CheckpointDamagedException($"{f} is a symbolic link, not a file of this checkpoint");
            if (file.Length != want.Bytes) throw new CheckpointDamagedException($"{f} has {file.Length} bytes, {FileName} says {want.Bytes}");
            if (Digest(file.FullName).Sha256 != want.Sha256) throw new CheckpointDamagedException($"{f} does not match its SHA-256 in {FileName} (the file is corrupt)");
        }
        return sums;
    }

    private static FileDigest Digest(string path)
    {
        try
        {
            using var fs = InputFile.Open(path, InputKind.Weights);
            return new FileDigest(Convert.ToHexStringLower(SHA256.HashData(fs)), fs.Length);
        }
        catch (InputError e) { throw new CheckpointDamagedException($"{Path.GetFileName(path)} {e.Problem}"); }
    }

    /// <summary>A JSON file of a checkpoint through the checked reader (regular file, bounded, valid strings and unique
    /// keys); anything wrong with it makes the checkpoint damaged, with the reason.</summary>
    internal static T ReadJson<T>(string path)
    {
        try { return InputJson.Deserialize<T>(path, InputKind.RunFile, TrainConfig.Json); }
        catch (InputError e) { throw new CheckpointDamagedException($"{Path.GetFileName(path)} is not valid ({e.Problem})"); }
    }
}

/// <summary>A checkpoint folder that must not be resumed from; the message says why (it follows the folder's name).</summary>
public sealed class CheckpointDamagedException(string problem) : Exception(problem);
