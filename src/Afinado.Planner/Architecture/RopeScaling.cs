namespace Afinado.Planner.Architecture;

/// <summary>
/// The config's <c>rope_scaling</c> block: how RoPE frequencies are stretched for long context. A trainer needs it to
/// reproduce Llama 3.1+ exactly (<c>llama3</c> type); the planner ignores it (no memory effect).
/// </summary>
public sealed record RopeScaling(string Type, double Factor, double? LowFreqFactor, double? HighFreqFactor, int? OriginalMaxPositionEmbeddings)
{
    /// <summary>Reads <c>rope_scaling</c>; null when absent. A malformed block is an <see cref="InputError"/>.</summary>
    internal static RopeScaling? Read(ConfigFields c)
    {
        var element = c.Element("rope_scaling");
        if (element is null) return null;
        if (element.Value.ValueKind != System.Text.Json.JsonValueKind.Object)
            throw c.Invalid("rope_scaling", "must be an object or null", "Restore the value from the model's original config.json.");
        var s = new ConfigFields(element.Value, $"{c.Source}: rope_scaling");
        string type = s.OptionalString("rope_type") ?? s.OptionalString("type")
            ?? throw c.Invalid("rope_scaling.rope_type", "is missing", "Restore the value from the model's original config.json.");
        return new RopeScaling(
            type,
            s.PositiveNumber("factor", 1.0),
            s.Has("low_freq_factor") ? s.PositiveNumber("low_freq_factor", 1) : null,
            s.Has("high_freq_factor") ? s.PositiveNumber("high_freq_factor", 1) : null,
            s.OptionalDim("original_max_position_embeddings"));
    }
}
