using Afinado.Training.Loop;
using System.Text.Json;
using System.Text.RegularExpressions;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Runs;

/// <summary>
/// A run folder as Evaluation sees it: <c>manifest.json</c> (required: the pinned identity), <c>summary.json</c>
/// (optional: cost, curves) and <c>eval.json</c> (optional: Evaluation's own results, schema afinado.eval/1).
/// Every problem with the folder or its files is an <see cref="InputError"/> that names the file and the fix.
/// </summary>
public sealed partial class RunDirectory
{
    public const string ManifestFile = "manifest.json";
    public const string SummaryFile = "summary.json";
    public const string EvaluationFile = "eval.json";

    private RunDirectory(string path, RunManifest manifest, RunSummary? summary, EvaluationResult? evaluation)
    {
        Path = path;
        Manifest = manifest;
        Summary = summary;
        Evaluation = evaluation;
    }

    public string Path { get; }
    public RunManifest Manifest { get; }
    public RunSummary? Summary { get; }
    public EvaluationResult? Evaluation { get; }
    public string Name => System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(Path));

    public static RunDirectory Open(string path, InputText? field = null)
    {
        field ??= "RUN_DIR";
        if (!Directory.Exists(path))
            throw new InputError(field, $"run folder '{path}' does not exist", "Pass a folder written by `afinado train` or `afinado eval --out`.");
        var manifestPath = System.IO.Path.Combine(path, ManifestFile);
        if (!File.Exists(manifestPath))
            throw new InputError(field, $"'{path}' has no {ManifestFile}, so its results cannot be tied to exact weights, data and code",
                "Pass a run folder written by `afinado train` or `afinado eval --out` (they write the manifest).");
        var manifest = ReadJson<RunManifest>(manifestPath, RunManifest.SchemaId, m => m.Schema);
        Validate(manifestPath, manifest);
        var summaryPath = System.IO.Path.Combine(path, SummaryFile);
        var summary = File.Exists(summaryPath) ? ReadJson<RunSummary>(summaryPath, RunSummary.SchemaId, s => s.Schema) : null;
        var evalPath = System.IO.Path.Combine(path, EvaluationFile);
        var evaluation = File.Exists(evalPath) ? ReadJson<EvaluationResult>(evalPath, EvaluationResult.SchemaId, e => e.Schema) : null;
        return new RunDirectory(path, manifest, summary, evaluation);
    }

    internal static T ReadJson<T>(string file, string schema, Func<T, string> schemaOf) where T : class
    {
        string name = InputFile.Describe(file);
        string fix = $"Restore it from the run that wrote it, or re-run that step; it must be a {schema} document.";
        // A FIFO, device or oversized file is refused as such; only what parses badly is "corrupt".
        var bytes = InputFile.ReadAllBytes(file, InputKind.RunFile);
        T? value;
        try
        {
            using var doc = InputJson.Parse(bytes, name, InputKind.RunFile);
            value = doc.RootElement.Deserialize<T>(EvalJson.Options);
        }
        catch (InputError e)
        {
            throw new InputError(name, $"is corrupt or incomplete: {e.Problem}", fix, e);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NotSupportedException or ArgumentException)
        {
            var where = e is JsonException { Path: { } p } ? $" at {p}" : "";
            throw new InputError(name, $"is corrupt or incomplete{where}: {TerminalText.Escape(FirstSentence(e.Message))}", fix, e);
        }
        if (value is null) throw new InputError(name, "is empty (JSON null)", $"Restore it; it must be a {schema} document.");
        if (schemaOf(value) != schema)
            throw new InputError(name, $"has schema '{TerminalText.Escape(schemaOf(value))}', expected '{schema}'", "Use a run folder written by this version of Afinado, or convert the file.");
        return value;
    }

    private static void Validate(string file, RunManifest m)
    {
        for (int i = 0; i < m.BaseWeights.Count; i++) CheckHash(file, $"base_weights[{i}].sha256", m.BaseWeights[i].Sha256);
        for (int i = 0; i < (m.OutputWeights?.Count ?? 0); i++) CheckHash(file, $"output_weights[{i}].sha256", m.OutputWeights![i].Sha256);
        CheckHash(file, "config_sha256", m.ConfigSha256);
        for (int i = 0; i < m.DataFiles.Count; i++) CheckHash(file, $"data_files[{i}].sha256", m.DataFiles[i].Sha256);
        if (string.IsNullOrWhiteSpace(m.CodeVersion))
            throw new InputError($"{file}: code_version", "is empty", "Record the git commit the run was made with.");
    }

    private static void CheckHash(string file, InputText field, string? hash)
    {
        if (hash is null || !Sha256Hex().IsMatch(hash))
            throw new InputError($"{file}: {field}", $"'{hash}' is not a SHA-256 (64 lower-case hex digits)", "Record the content hash of the file (sha256sum), not a name or a path.");
    }

    private static string FirstSentence(string message) => message.Split(". ")[0];

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Hex();
}
