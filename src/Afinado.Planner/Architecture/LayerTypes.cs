using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// Which decoder layers attend only within the sliding window, read from a config's <c>layer_types</c> (one
/// <c>"sliding_attention"</c> or <c>"full_attention"</c> per layer) or, for configs saved before that key existed, derived
/// the way transformers' config classes do (Gemma: a repeating pattern; Qwen: every layer from max_window_layers on).
/// </summary>
internal static class LayerTypes
{
    private const string Sliding = "sliding_attention";
    private const string Full = "full_attention";

    /// <summary>
    /// Per layer, true where it slides. Without <c>layer_types</c>, layer <c>i</c> slides unless <c>i + 1</c> is a multiple
    /// of <paramref name="pattern"/>: Gemma3TextConfig (transformers models/gemma3/configuration_gemma3.py) builds
    /// <c>"sliding_attention" if bool((i + 1) % self._sliding_window_pattern) else "full_attention"</c>, and Gemma2Config
    /// the same with 2, i.e. even layers slide as Gemma 2's <c>is_sliding = not bool(layer_idx % 2)</c> did.
    /// </summary>
    public static bool[] Read(ConfigFields c, int layers, int pattern) => Read(c, layers, i => (i + 1) % pattern != 0);

    /// <summary>
    /// Qwen2/Qwen3 (and their MoE configs) with <c>use_sliding_window</c>: without <c>layer_types</c>, layer <c>i</c> slides
    /// when <c>i ≥ max_window_layers</c> (Qwen2Config: <c>"sliding_attention" if self.sliding_window is not None and
    /// i >= self.max_window_layers else "full_attention"</c>; max_window_layers defaults to 28).
    /// </summary>
    public static bool[] ReadQwen(ConfigFields c, int layers)
    {
        int first = c.Bounded("max_window_layers", 28, 0, int.MaxValue);
        return Read(c, layers, i => i >= first);
    }

    private static bool[] Read(ConfigFields c, int layers, Func<int, bool> slidesByDefault)
    {
        var element = c.Element("layer_types");
        if (element is null) return Enumerable.Range(0, layers).Select(slidesByDefault).ToArray();
        var list = element.Value;
        if (list.ValueKind != JsonValueKind.Array)
            throw c.Invalid("layer_types", $"must be a list of \"{Sliding}\" / \"{Full}\", found {list.ValueKind.ToString().ToLowerInvariant()}",
                "Restore the value from the model's original config.json, or remove it to use sliding_window_pattern.");
        int count = list.GetArrayLength();
        // transformers' layer_type_validation rejects a list whose length differs from num_hidden_layers.
        if (count != layers)
            throw c.Invalid("layer_types", $"has {count} entries but num_hidden_layers is {layers}", "List one attention type per decoder layer.");
        var sliding = new bool[layers];
        int i = 0;
        foreach (var e in list.EnumerateArray())
        {
            string? type = e.ValueKind == JsonValueKind.String ? e.GetString() : null;
            sliding[i] = type switch
            {
                Sliding => true,
                Full => false,
                // Gemma's attention knows only these two; any other type would build a layer we do not model (linear-attention
                // and state-space kinds are refused by name before any family is built: RecurrentLayers).
                _ => throw c.Invalid("layer_types", $"entry {i} is {Describe(e)}, not \"{Sliding}\" or \"{Full}\"",
                    "Restore the value from the model's original config.json."),
            };
            i++;
        }
        return sliding;
    }

    private static string Describe(JsonElement e) => e.ValueKind == JsonValueKind.String
        ? $"\"{(e.GetString() is { Length: > 40 } s ? s[..40] + "…" : e.GetString())}\""
        : e.ValueKind.ToString().ToLowerInvariant();
}
