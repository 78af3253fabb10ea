using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> into a <see cref="ModelArchitecture"/>.
/// Every field read is validated; a missing, negative or absurd value raises <see cref="InputError"/> naming the key.
/// </summary>
public static class HfConfigReader
{
    /// <summary>Parse config text. <paramref name="source"/> names the file in error messages.</summary>
    public static ModelArchitecture Parse(string json, string source = "config.json")
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip, MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new InputError(source, $"is not valid JSON ({e.Message})", "Pass the model's Hugging Face config.json unchanged.", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InputError(source, "is not a JSON object", "Pass the model's Hugging Face config.json unchanged.");
            var cfg = new ConfigFields(doc.RootElement, source);
            var modelType = cfg.RequiredString("model_type");
            return ArchitectureFamilies.Build(modelType, cfg);
        }
    }

    public static ModelArchitecture ReadFile(string path)
    {
        if (!File.Exists(path))
            throw new InputError(path, "does not exist", "Give a catalog id (see `afinado plan --list-models`), a config.json path, or a folder holding config.json.");
        var info = new FileInfo(path);
        if (info.Length > 16 * 1024 * 1024)
            throw new InputError(path, $"is {info.Length:N0} bytes, far larger than any config.json", "Point --model at the model's config.json, not a weights file.");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputError(path, $"cannot be read ({e.Message})", "Check the path and its permissions.", e);
        }
        return Parse(text, path) with { Name = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path))) ?? path };
    }
}
