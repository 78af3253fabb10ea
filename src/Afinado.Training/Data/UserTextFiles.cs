using System.Text;
using System.Text.Json;
using Afinado.Planner;

namespace Afinado.Training.Data;

/// <summary>
/// A user's own text: a <c>.jsonl</c> file (one JSON object per line with <c>text</c>, or <c>prompt</c> +
/// <c>completion</c>/<c>response</c>) or a plain text file (documents separated by lines of <c>%</c> if the file has any,
/// else by blank lines).
/// </summary>
public static class UserTextFiles
{
    public static IReadOnlyList<TextDocument> Load(string path, string language = "und")
    {
        if (!File.Exists(path))
            throw new InputError("--data", $"\"{path}\" does not exist", "Give a .txt or .jsonl file.");
        var category = Path.GetFileNameWithoutExtension(path);
        var content = File.ReadAllText(path, Encoding.UTF8);
        IEnumerable<string> texts = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? ParseJsonl(content, path) : ParseText(content);
        var docs = texts.Where(t => t.Length > 0).Select(t => new TextDocument(t, language, category, path)).ToList();
        if (docs.Count == 0)
            throw new InputError("--data", $"\"{path}\" holds no documents", "Put at least one non-empty document in the file.");
        return docs;
    }

    private static IEnumerable<string> ParseText(string content)
    {
        var normalized = content.Replace("\r\n", "\n");
        if (normalized.Split('\n').Any(l => l == "%")) return FortuneCorpus.ParseFortunes(normalized);
        return normalized.Split("\n\n").Select(p => p.Trim());
    }

    private static IEnumerable<string> ParseJsonl(string content, string path)
    {
        var lines = content.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new InputError("--data", $"{path} line {i + 1} is not JSON ({e.Message})", "Write one JSON object per line."); }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                    yield return text.GetString()!;
                else if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("prompt", out var prompt) &&
                         (root.TryGetProperty("completion", out var answer) || root.TryGetProperty("response", out answer)))
                    yield return prompt.GetString() + answer.GetString();
                else
                    throw new InputError("--data", $"{path} line {i + 1} has neither \"text\" nor \"prompt\"+\"completion\"", "Give each line a \"text\" string field.");
            }
        }
    }
}
