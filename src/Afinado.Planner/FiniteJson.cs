using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Afinado.Planner;

/// <summary>
/// The one rule for non-finite numbers in every JSON file and stdout document Afinado writes: NaN and ±Infinity are
/// written as <c>null</c> ("no valid figure"), because plain JSON has no such numbers and System.Text.Json throws on
/// them — a diverged run would otherwise crash before its summary.json exists. Reading accepts numbers, <c>null</c>
/// (read back as NaN where the field is not nullable) and the strings "NaN"/"Infinity"/"-Infinity" that older
/// eval.json files hold. Register it with <see cref="AddTo"/>; <c>double?</c> fields use it through the nullable wrapper.
/// </summary>
public sealed class FiniteJson : JsonConverter<double>
{
    public static readonly FiniteJson Instance = new();

    /// <summary>Adds the double and float converters to <paramref name="options"/> and returns them.</summary>
    public static JsonSerializerOptions AddTo(JsonSerializerOptions options)
    {
        options.Converters.Add(Instance);
        options.Converters.Add(new SingleConverter());
        return options;
    }

    // Called for null tokens too: a non-nullable double field written as null (was NaN) reads back as NaN.
    public override bool HandleNull => true;

    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Number => reader.GetDouble(),
        JsonTokenType.Null => double.NaN,
        JsonTokenType.String => reader.GetString() switch
        {
            "NaN" => double.NaN,
            "Infinity" => double.PositiveInfinity,
            "-Infinity" => double.NegativeInfinity,
            var s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            var s => throw new JsonException($"\"{s}\" is not a number"),
        },
        var t => throw new JsonException($"expected a number, found {t}"),
    };

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
    {
        if (double.IsFinite(value)) writer.WriteNumberValue(value);
        else writer.WriteNullValue();
    }

    private sealed class SingleConverter : JsonConverter<float>
    {
        public override bool HandleNull => true;
        public override float Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            (float)Instance.Read(ref reader, typeof(double), options);
        public override void Write(Utf8JsonWriter writer, float value, JsonSerializerOptions options)
        {
            if (float.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }
}
