using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Afinado.Evaluation;

/// <summary>
/// The one JSON style of Evaluation's outputs: snake_case keys, enums as snake_case strings, indented; a NaN/Infinity
/// figure is written as null (<see cref="Afinado.Planner.FiniteJson"/>), and the "NaN" strings older files hold still read.
/// </summary>
public static class EvalJson
{
    public static readonly JsonSerializerOptions Options = Afinado.Planner.FiniteJson.AddTo(new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        // Readable +, ', →, … in files people open; the HTML report escapes what it embeds itself.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    });

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);
}
