using System.Text.Json;
using System.Text.Json.Serialization;
using Afinado.Planner.Memory;

namespace Afinado.Training.LearningRules;

/// <summary>
/// The rules by the planner's <see cref="LearningRule"/>, written in JSON (bench rows, run configs) as the planner and the
/// flags spell them: <c>backprop</c>, <c>es</c>, <c>es-direct</c>, <c>dfa</c>, <c>guided-es</c>.
/// </summary>
public sealed class RuleWordJsonConverter : JsonConverter<LearningRule>
{
    public override LearningRule Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        string? word = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        foreach (var rule in Enum.GetValues<LearningRule>())
            if (rule.Name() == word) return rule;
        throw new JsonException($"\"{word}\" is not a learning rule (backprop, es, es-direct, dfa or guided-es)");
    }

    public override void Write(Utf8JsonWriter writer, LearningRule value, JsonSerializerOptions options) => writer.WriteStringValue(value.Name());
}
