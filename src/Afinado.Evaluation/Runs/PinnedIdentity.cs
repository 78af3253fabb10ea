using Afinado.Training.Loop;
using System.Security.Cryptography;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Runs;

namespace Afinado.Evaluation.Runs;

/// <summary>
/// Results are only meaningful for exact bytes ("gpt-4-0314" exists because versions behave differently). This class
/// hashes files, keys results by the manifest's hashes, and refuses comparisons that would mix models.
/// </summary>
public static class PinnedIdentity
{
    public static string Sha256OfFile(string path)
    {
        // Paths come from manifests and flags: hashing a FIFO or /dev/zero would never end, so only regular files are opened.
        using var stream = InputFile.Open(path, InputKind.Weights);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    public static string Sha256OfBytes(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The key results are filed under: base weights, output weights, data, config and code, hashed together.</summary>
    public static string ResultKey(RunManifest m)
    {
        var parts = new List<string> { "base=" + (m.BaseSha256 ?? "-"), "out=" + (m.OutputSha256 ?? "-"), "config=" + m.ConfigSha256, "code=" + m.CodeVersion, "seed=" + m.Seed };
        parts.AddRange(m.DataFiles.OrderBy(d => d.Sha256, StringComparer.Ordinal).Select(d => "data=" + d.Sha256));
        return Sha256OfBytes(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', parts)))[..16];
    }

    /// <summary>
    /// Refuses to compare runs that started from different base weights unless <paramref name="allowDifferentBase"/>;
    /// returns the human-readable warnings to print and put in the report when they are allowed.
    /// </summary>
    public static IReadOnlyList<string> CheckSameBase(IReadOnlyList<RunDirectory> runs, bool allowDifferentBase)
    {
        var warnings = new List<string>();
        var first = runs[0];
        foreach (var other in runs.Skip(1))
        {
            if (other.Manifest.BaseSha256 == first.Manifest.BaseSha256) continue;
            var message = $"runs '{first.Name}' and '{other.Name}' start from different base weights " +
                          $"({first.Manifest.BaseName} sha256 {Short(first.Manifest.BaseSha256)} vs " +
                          $"{other.Manifest.BaseName} sha256 {Short(other.Manifest.BaseSha256)})";
            if (!allowDifferentBase)
                throw new InputError(EvalParameters.AllowDifferentBase, message + ", so their gains and taxes are not comparable",
                    $"Compare runs finetuned from the same base weights, or pass {EvalParameters.AllowDifferentBase} to compare anyway (the report flags it).");
            warnings.Add("DIFFERENT BASE: " + message);
        }
        return warnings;
    }

    /// <summary>
    /// Pins a model given on the command line. A weights file is hashed. Anything else is a mutable name (a hub or
    /// catalog id can point at different weights tomorrow) and is accepted only with a recorded hash: one passed
    /// explicitly, or one a run manifest records for that name.
    /// </summary>
    /// <summary>First 12 hex digits of a hash for messages, or "none" when there is none.</summary>
    public static string Short(string? sha256) => sha256 is null ? "none" : sha256[..Math.Min(12, sha256.Length)] + "…";

    /// <summary>
    /// Refuses to use base weights whose bytes changed since a manifest pinned them: rehashes every recorded file.
    /// </summary>
    public static void VerifyBaseWeights(RunManifest manifest, InputText field)
    {
        if (manifest.BaseWeights.Count == 0)
            throw new InputError(field, "the run's manifest records no base weights (the model was trained from scratch), so there is no base to compare against",
                "Evaluate a finetuning run (e.g. `afinado train --recipe fortunes-es`).");
        foreach (var f in manifest.BaseWeights)
        {
            if (!File.Exists(f.Path))
                throw new InputError(field, $"the pinned base weights '{f.Path}' are missing", "Restore the base model the run was finetuned from (same bytes), then evaluate again.");
            var actual = Sha256OfFile(f.Path);
            if (actual != f.Sha256)
                throw new InputError(field, $"the base weights '{f.Path}' hash to {Short(actual)} but the manifest pins {Short(f.Sha256)}: they changed since the run was made",
                    "Restore the exact base weights the run started from; results against other bytes would not describe this finetune.");
        }
    }

    public static PinnedFile PinModel(string model, string? sha256, IEnumerable<RunManifest> manifests, InputText? field = null)
    {
        field ??= EvalParameters.Model;
        if (File.Exists(model))
        {
            var actual = Sha256OfFile(model);
            if (sha256 is not null && !sha256.Equals(actual, StringComparison.OrdinalIgnoreCase))
                throw new InputError($"{field}-sha256", $"'{model}' hashes to {actual}, not {sha256}", "The file changed since the hash was recorded: use the recorded file or update the hash.");
            return new PinnedFile(model, actual);
        }
        if (sha256 is not null)
        {
            if (sha256.Length != 64 || !sha256.All(Uri.IsHexDigit))
                throw new InputError($"{field}-sha256", $"'{sha256}' is not a SHA-256", "Give the 64-hex-digit content hash of the weights (sha256sum).");
            return new PinnedFile(model, sha256.ToLowerInvariant());
        }
        var recorded = manifests.SelectMany(m => m.BaseWeights.Concat(m.OutputWeights ?? []))
            .FirstOrDefault(p => p.Path == model);
        if (recorded is not null) return new PinnedFile(recorded.Path, recorded.Sha256);
        throw new InputError(field, $"'{model}' is a mutable name: the weights behind a name can change, so results for it could not be reproduced",
            $"Pass the weights file itself, a run whose manifest records the hash of '{model}', or {field}-sha256 HASH.");
    }
}
