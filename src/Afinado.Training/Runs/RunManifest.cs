using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using Afinado.Planner.Inputs;
using Afinado.Training.Loop;

namespace Afinado.Training.Runs;

/// <summary>
/// What a run was made from, pinned by content: SHA-256 of the base weights, every data file and the resolved config,
/// the code version (git commit when available) and the seed. Evaluation results are keyed by it.
/// This is the ONE manifest contract (schema <c>afinado.manifest/1</c>): the trainer writes it, <c>afinado eval</c>'s
/// own run folders write it, and Evaluation reads it. Unknown extra fields are ignored; hashes are lower-case hex.
/// </summary>
public sealed record RunManifest
{
    public const string SchemaId = "afinado.manifest/1";

    public string Schema { get; init; } = SchemaId;
    public required string ConfigSha256 { get; init; }
    /// <summary>The weights the run started from (every shard); empty for a model trained from scratch.</summary>
    public IReadOnlyList<FileHash> BaseWeights { get; init; } = [];
    /// <summary>The weights the run produced, when known when the manifest is written (evaluation runs; training runs record them in <c>model/</c>).</summary>
    public IReadOnlyList<FileHash>? OutputWeights { get; init; }
    public required IReadOnlyList<FileHash> DataFiles { get; init; }
    /// <summary>SHA-256 over the data files' (path, hash) list: one value to compare.</summary>
    public required string DataSha256 { get; init; }
    public required string CodeVersion { get; init; }
    public required long Seed { get; init; }
    public required string CreatedUtc { get; init; }

    /// <summary>One value identifying the base weights: the hash of the single file, or of the shards' hashes in order; null when trained from scratch.</summary>
    [JsonIgnore]
    public string? BaseSha256 => Combined(BaseWeights);

    /// <summary>Same for the output weights.</summary>
    [JsonIgnore]
    public string? OutputSha256 => OutputWeights is null ? null : Combined(OutputWeights);

    /// <summary>The base weights for people: file path(s), or "none (trained from scratch)".</summary>
    [JsonIgnore]
    public string BaseName => BaseWeights.Count == 0 ? "none (trained from scratch)" : string.Join(", ", BaseWeights.Select(b => b.Path));

    private static string? Combined(IReadOnlyList<FileHash> files) => files.Count switch
    {
        0 => null,
        1 => files[0].Sha256,
        _ => Sha256(Encoding.UTF8.GetBytes(string.Join("\n", files.Select(f => f.Sha256)))),
    };

    /// <summary>SHA-256 over the data files' (path, hash) list.</summary>
    public static string DataDigest(IEnumerable<FileHash> data) =>
        Sha256(Encoding.UTF8.GetBytes(string.Join("\n", data.Select(d => $"{d.Path}\t{d.Sha256}"))));

    public sealed record FileHash([property: JsonPropertyName("path")] string Path, [property: JsonPropertyName("sha256")] string Sha256, [property: JsonPropertyName("bytes")] long Bytes);

    public static RunManifest Create(TrainConfig config, IEnumerable<string> baseWeightFiles, IEnumerable<string> dataFiles)
    {
        var data = dataFiles.Select(Hash).ToList();
        return new RunManifest
        {
            ConfigSha256 = Sha256(Encoding.UTF8.GetBytes(config.ToJson())),
            BaseWeights = baseWeightFiles.Select(Hash).ToList(),
            DataFiles = data,
            DataSha256 = DataDigest(data),
            CodeVersion = CodeVersionString(),
            Seed = config.Seed,
            CreatedUtc = DateTime.UtcNow.ToString("O"),
        };
    }

    public static FileHash Hash(string path)
    {
        // Hashed files may come from the user (a base model): a FIFO or device is refused instead of read forever.
        using var fs = InputFile.Open(path, InputKind.Weights);
        return new FileHash(path, Convert.ToHexStringLower(SHA256.HashData(fs)), fs.Length);
    }

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>
    /// The git commit of the checkout the binary runs from, with <c>-dirty</c>; else (an installed tool) the program's
    /// informational version, the package version with the commit it was built from (<c>0.1.0+sha</c>). The current
    /// directory is the user's, not the tool's: its repository says nothing about the code that ran.
    /// </summary>
    public static string CodeVersionString()
    {
        if (GitDescribe(AppContext.BaseDirectory) is { } v) return "git:" + v;
        var program = System.Reflection.Assembly.GetEntryAssembly() ?? typeof(RunManifest).Assembly;
        string? version = program.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion;
        return "assembly:" + (version ?? program.GetName().Version?.ToString() ?? "unknown");
    }

    /// <summary>The commit of Afinado's own checkout holding <paramref name="dir"/>; null when <paramref name="dir"/> is in
    /// no repository or in another one (a tool installed inside a user's project).</summary>
    private static string? GitDescribe(string dir)
    {
        if (Git(dir, "rev-parse", "--show-toplevel") is not { } top
            || !File.Exists(Path.Combine(top, "src", "Afinado.Training", "Afinado.Training.csproj"))) return null;
        return Git(dir, "describe", "--always", "--dirty", "--abbrev=40");
    }

    private static string? Git(string dir, params string[] args)
    {
        try
        {
            var psi = new ProcessStartInfo("git", ["-C", dir, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var output = p.StandardOutput.ReadToEnd().Trim();
            if (p.WaitForExit(5000) && p.ExitCode == 0 && output.Length > 0) return output;
        }
        catch (System.ComponentModel.Win32Exception) { }
        return null;
    }
}
