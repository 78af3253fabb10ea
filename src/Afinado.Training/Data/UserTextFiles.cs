using System.Text.Json;
using Afinado.Planner;
using Afinado.Planner.Inputs;
using Afinado.Training.Loop;

namespace Afinado.Training.Data;

/// <summary>
/// A user's own text: a <c>.jsonl</c> file (one JSON object per line with <c>text</c>, or <c>prompt</c> +
/// <c>completion</c>/<c>response</c>) or a plain text file (documents separated by lines of <c>%</c> if the file has any,
/// else by blank lines). Read through <see cref="InputFile"/>: regular files only, streamed line by line, strict UTF-8,
/// and every bad line is an <see cref="InputError"/> naming <c>file:line</c> (and the key, for JSONL).
/// </summary>
public static class UserTextFiles
{
    private const string JsonlFix = "Write one JSON object per line with a \"text\" string, or \"prompt\" and \"completion\" strings.";

    public static IReadOnlyList<TextDocument> Load(string path, string language = "und")
    {
        // Refuses FIFOs and devices up front, before the first line is asked for.
        InputFile.Check(path, InputKind.Data, TrainParameters.Data);
        var category = Path.GetFileNameWithoutExtension(path);
        IEnumerable<string> texts = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? ParseJsonl(path) : ParseText(path);
        var docs = texts.Where(t => t.Length > 0).Select(t => new TextDocument(t, language, category, path)).ToList();
        if (docs.Count == 0)
            throw new InputError(TrainParameters.Data, $"{InputFile.Describe(path)} holds no documents", "Put at least one non-empty document in the file.");
        return docs;
    }

    private static IEnumerable<string> Lines(string path) => InputFile.ReadLines(path, InputKind.Data).Select(l => l.Text);

    /// <summary>Two streamed passes: the first only looks for a <c>%</c> line, which decides how documents are separated.</summary>
    private static IEnumerable<string> ParseText(string path) =>
        Lines(path).Any(l => l == "%") ? FortuneCorpus.ParseFortunes(Lines(path)) : Paragraphs(Lines(path));

    private static IEnumerable<string> Paragraphs(IEnumerable<string> lines)
    {
        var current = new System.Text.StringBuilder();
        foreach (var line in lines)
        {
            if (line.Length == 0)
            {
                if (current.Length > 0) yield return current.ToString().Trim();
                current.Clear();
            }
            else current.Append(current.Length > 0 ? "\n" : "").Append(line);
        }
        if (current.Length > 0) yield return current.ToString().Trim();
    }

    private static IEnumerable<string> ParseJsonl(string path)
    {
        string name = InputFile.Describe(path);
        foreach (var (number, line) in InputFile.ReadLines(path, InputKind.Data))
        {
            if (line.Trim().Length == 0) continue;
            string where = $"{name}:{number}";
            using var doc = InputJson.Parse(line, where, InputKind.Data);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InputError(where, $"is a JSON {root.ValueKind.ToString().ToLowerInvariant()}, not an object", JsonlFix);
            if (root.TryGetProperty("text", out var text))
                yield return Text(text, where, "text");
            else if (root.TryGetProperty("prompt", out var prompt) &&
                     (root.TryGetProperty("completion", out var answer) || root.TryGetProperty("response", out answer)))
                yield return Text(prompt, where, "prompt") + Text(answer, where, root.TryGetProperty("completion", out _) ? "completion" : "response");
            else
                throw new InputError(where, "has neither \"text\" nor \"prompt\"+\"completion\"", JsonlFix);
        }
    }

    /// <summary>A field that must be a string: a number or null is named, not turned into text or a crash.</summary>
    private static string Text(JsonElement value, string where, string key) =>
        value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new InputError($"{where}: {key}", $"must be a string, found {(value.ValueKind == JsonValueKind.Null ? "null" : value.ValueKind.ToString().ToLowerInvariant())}", JsonlFix);
}
