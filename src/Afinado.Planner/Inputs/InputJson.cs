using System.Text;
using System.Text.Json;

namespace Afinado.Planner.Inputs;

/// <summary>
/// JSON from a file Afinado did not write, parsed so that nothing in it can crash a reader later: System.Text.Json
/// accepts some documents whose values then throw when read — a lone UTF-16 surrogate escape (<c>"\ud800"</c>) throws
/// from <c>GetString</c>, a number such as <c>1e400</c> from <c>GetDouble</c> — and keeps the last of duplicate keys
/// silently. After parsing, every key and value is checked once, and each problem is an <see cref="InputError"/> naming
/// the file and the key path (<c>$.layers[3].name</c>).
/// </summary>
public static class InputJson
{
    /// <summary>How deep objects and arrays may nest (configs nest 3–4 levels; deeper input is hostile).</summary>
    public const int DefaultMaxDepth = 64;

    public static JsonDocument ReadFile(string path, InputKind kind, InputText? field = null, int maxDepth = DefaultMaxDepth, bool lenient = false) =>
        Parse(InputFile.ReadAllBytes(path, kind, field), field ?? InputFile.Describe(path), kind, maxDepth, lenient);

    /// <summary>Parses and checks UTF-8 JSON. <paramref name="lenient"/> allows comments and trailing commas (hand-edited configs).</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> utf8, InputText source, InputKind kind, int maxDepth = DefaultMaxDepth, bool lenient = false)
    {
        // Invalid UTF-8 inside strings is only noticed when a string is read: check all the bytes first.
        InputFile.DecodeUtf8(utf8.Span, source, kind);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8, new JsonDocumentOptions
            {
                MaxDepth = maxDepth,
                AllowTrailingCommas = lenient,
                CommentHandling = lenient ? JsonCommentHandling.Skip : JsonCommentHandling.Disallow,
            });
        }
        catch (JsonException e)
        {
            throw new InputError(source, $"is not valid JSON ({TerminalText.Escape(e.Message)})", kind.Fix, e);
        }
        try { Check(doc.RootElement, source, "$"); }
        catch { doc.Dispose(); throw; }
        return doc;
    }

    /// <summary>Parses and checks JSON text (a string already read).</summary>
    public static JsonDocument Parse(string text, InputText source, InputKind kind, int maxDepth = DefaultMaxDepth, bool lenient = false) =>
        Parse(Encoding.UTF8.GetBytes(text), source, kind, maxDepth, lenient);

    /// <summary>Reads a checked file into <typeparamref name="T"/>; a value of the wrong type or shape names its key.</summary>
    public static T Deserialize<T>(string path, InputKind kind, JsonSerializerOptions options, InputText? field = null)
    {
        using var doc = ReadFile(path, kind, field);
        try
        {
            return doc.RootElement.Deserialize<T>(options)
                ?? throw new InputError(field ?? InputFile.Describe(path), "holds null where an object is expected", kind.Fix);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NotSupportedException or ArgumentException)
        {
            string at = e is JsonException { Path: { } p } ? $" at {p}" : "";
            throw new InputError(field ?? InputFile.Describe(path), $"has a value of the wrong type or range{at} ({TerminalText.Escape(e.Message)})", kind.Fix, e);
        }
    }

    private static void Check(JsonElement e, InputText source, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                {
                    string name;
                    try { name = p.Name; }
                    catch (InvalidOperationException)
                    {
                        throw Bad(source, $"{path}: a key holds an invalid UTF-16 escape (a lone surrogate such as \\ud800)");
                    }
                    string at = $"{path}.{TerminalText.Escape(name)}";
                    if (!seen.Add(name)) throw Bad(source, $"{at}: the key appears twice");
                    Check(p.Value, source, at);
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray()) Check(item, source, $"{path}[{i++}]");
                break;
            case JsonValueKind.String:
                try { _ = e.GetString(); }
                catch (InvalidOperationException)
                {
                    throw Bad(source, $"{path}: the string holds an invalid UTF-16 escape (a lone surrogate such as \\ud800)");
                }
                break;
            case JsonValueKind.Number:
                if (!e.TryGetDouble(out double d) || !double.IsFinite(d)) throw Bad(source, $"{path}: the number {Short(e.GetRawText())} is out of range");
                break;
        }
    }

    private static string Short(string raw) => raw.Length <= 40 ? raw : raw[..37] + "...";

    private static InputError Bad(InputText source, string problem) =>
        new(source, problem, "Fix or regenerate the file; Afinado reads standard JSON with unique keys and valid strings.");
}
