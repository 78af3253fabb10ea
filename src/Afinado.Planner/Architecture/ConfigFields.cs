using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>Typed, validated access to config.json keys. Errors name the file and key and say what a sane value looks like.</summary>
public sealed class ConfigFields
{
    /// <summary>Largest width, vocabulary or layer count accepted; beyond this a value is a typo or an attack, not a model.</summary>
    public const long MaxDimension = 100_000_000;

    private readonly JsonElement _root;
    private readonly string _source;

    public ConfigFields(JsonElement root, string source)
    {
        _root = root;
        _source = source;
    }

    /// <summary>The config's top-level keys, in file order.</summary>
    public IEnumerable<string> Keys => _root.ValueKind == JsonValueKind.Object ? _root.EnumerateObject().Select(p => p.Name) : [];

    public string Source => _source;

    public bool Has(string key) => _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    private InputError Error(string key, InputText problem, InputText fix) => new($"{_source}: {key}", problem, fix);

    public string RequiredString(string key)
    {
        if (!_root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw Error(key, "is missing", "Every Hugging Face config.json has it; pass the model's original config.json.");
        if (v.ValueKind != JsonValueKind.String)
            throw Error(key, $"must be a string, found {v.ValueKind}", "Restore the value from the model's original config.json.");
        return v.GetString()!;
    }

    public string? OptionalString(string key) =>
        _root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>A positive integer dimension (hidden size, layers, heads, vocab...).</summary>
    public int Dim(string key) => DimAny(key) ?? throw Error(key, "is missing", $"It is required for this model_type; pass the model's original config.json.");

    /// <summary>The first of several synonymous keys that is present (e.g. <c>n_embd</c> / <c>hidden_size</c>).</summary>
    public int Dim(params string[] keys)
    {
        foreach (var k in keys)
        {
            var v = DimAny(k);
            if (v is not null) return v.Value;
        }
        throw Error(string.Join(" / ", keys), "is missing", "It is required for this model_type; pass the model's original config.json.");
    }

    public int? OptionalDim(string key) => DimAny(key);

    /// <summary>The first present of several synonymous keys, or null when none is present.</summary>
    public int? OptionalDim(params string[] keys)
    {
        foreach (var k in keys)
        {
            var v = DimAny(k);
            if (v is not null) return v.Value;
        }
        return null;
    }

    /// <summary>A positive integer with a tighter bound than <see cref="MaxDimension"/> (layers, experts), under any of several synonymous keys.</summary>
    public int Count(int max, params string[] keys)
    {
        int v = Dim(keys);
        var key = keys.First(Has);
        if (v > max)
            throw Error(key, $"is {v:N0}, beyond any real model (limit {max:N0})", "Check for a typo in config.json.");
        return v;
    }

    /// <summary>
    /// An integer in [<paramref name="min"/>, <paramref name="max"/>] with the config class's default when absent; for counts
    /// where 0 is meaningful (qwen2_moe's <c>num_experts</c> = 0 means a dense model) or 1 is the floor (<c>decoder_sparse_step</c>).
    /// </summary>
    public int Bounded(string key, int fallback, int min, int max)
    {
        if (!_root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || d != Math.Floor(d))
            throw Error(key, $"must be a whole number, found {Describe(v)}", "Restore the value from the model's original config.json.");
        if (d < min)
            throw Error(key, $"must be at least {min}, found {d}", "Restore the value from the model's original config.json.");
        if (d > max)
            throw Error(key, $"is {d:G}, beyond any real model (limit {max:N0})", "Check for a typo in config.json.");
        return (int)d;
    }

    /// <summary>A list of layer indices (qwen MoE <c>mlp_only_layers</c>), each in [0, <paramref name="layers"/>); empty when absent.</summary>
    public IReadOnlySet<int> LayerIndices(string key, int layers)
    {
        var set = new HashSet<int>();
        if (!_root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return set;
        if (v.ValueKind != JsonValueKind.Array)
            throw Error(key, $"must be a list of layer indices, found {Describe(v)}", "Restore the value from the model's original config.json.");
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out var d) || d != Math.Floor(d))
                throw Error(key, $"must hold whole numbers, found {Describe(e)}", "Restore the value from the model's original config.json.");
            if (d < 0 || d >= layers)
                throw Error(key, $"names layer {d}, outside 0..{layers - 1} (num_hidden_layers = {layers})", "List only existing layer indices.");
            set.Add((int)d);
        }
        return set;
    }

    /// <summary>A strictly positive real number such as a norm epsilon or RoPE base.</summary>
    public double PositiveNumber(string key, double fallback)
    {
        double v = Number(key, fallback);
        if (v <= 0)
            throw Error(key, $"must be positive, found {v}", "Restore the value from the model's original config.json.");
        return v;
    }

    /// <summary>A probability such as a dropout rate, in [0, 1].</summary>
    public double Probability(string key, double fallback)
    {
        double v = Number(key, fallback);
        if (v < 0 || v > 1)
            throw Error(key, $"must be between 0 and 1, found {v}", "Restore the value from the model's original config.json.");
        return v;
    }

    /// <summary>A fraction in (0, 1] such as <c>partial_rotary_factor</c>.</summary>
    public double Fraction(string key, double fallback)
    {
        double v = Number(key, fallback);
        if (v <= 0 || v > 1)
            throw Error(key, $"must be in (0, 1], found {v}", "Restore the value from the model's original config.json.");
        return v;
    }

    private int? DimAny(string key)
    {
        if (!_root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || double.IsNaN(d))
            throw Error(key, $"must be a whole number, found {Describe(v)}", "Restore the value from the model's original config.json.");
        if (d != Math.Floor(d))
            throw Error(key, $"must be a whole number, found {d}", "Restore the value from the model's original config.json.");
        if (d <= 0)
            throw Error(key, $"must be positive, found {d}", "Restore the value from the model's original config.json.");
        if (d > MaxDimension)
            throw Error(key, $"is {d:G}, beyond any real model (limit {MaxDimension:N0})", "Check for a typo in config.json.");
        return (int)d;
    }

    public double Number(string key, double fallback)
    {
        if (!_root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || double.IsNaN(d) || double.IsInfinity(d))
            throw Error(key, $"must be a number, found {Describe(v)}", "Restore the value from the model's original config.json.");
        return d;
    }

    public bool Bool(string key, bool fallback)
    {
        if (!_root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, $"must be true or false, found {Describe(v)}", "Restore the value from the model's original config.json."),
        };
    }

    /// <summary>
    /// A nested config object that must be there (a multimodal config's <c>text_config</c> / <c>vision_config</c>: the
    /// config class would fill an absent one with defaults of a model nobody released), read with its key in the source.
    /// </summary>
    /// <param name="nests">What the file nests, for the fix: e.g. "the text model and the vision tower".</param>
    public ConfigFields Section(string key, string modelType, string nests)
    {
        var element = Element(key)
            ?? throw Invalid(key, "is missing", $"A {modelType} config.json nests {nests}; pass the original file.");
        return Section(key, element);
    }

    /// <summary>The nested object <paramref name="element"/> found under <paramref name="key"/>, which must be an object.</summary>
    public ConfigFields Section(string key, JsonElement element) =>
        element.ValueKind == JsonValueKind.Object
            ? new ConfigFields(element, $"{Source}: {key}")
            : throw Invalid(key, "must be an object", "Restore the value from the model's original config.json.");

    public JsonElement? Element(string key) =>
        _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => $"\"{Truncate(v.GetString() ?? "")}\"",
        JsonValueKind.Number => v.GetRawText(),
        _ => v.ValueKind.ToString().ToLowerInvariant(),
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";

    /// <summary>The keys among <paramref name="keys"/> that hold integers, with their values, in the order given (for messages).</summary>
    public IReadOnlyList<(string Key, long Value)> Integers(IEnumerable<string> keys) =>
        keys.Select(k => (Key: k, Found: _root.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out _) ? v.GetInt64() : (long?)null))
            .Where(x => x.Found is not null).Select(x => (x.Key, x.Found!.Value)).ToList();

    public InputError Invalid(string key, InputText problem, InputText fix) => Error(key, problem, fix);
}
