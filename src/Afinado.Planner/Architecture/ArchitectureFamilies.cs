namespace Afinado.Planner.Architecture;

/// <summary>
/// Maps a Hugging Face <c>model_type</c> to the code that reads its config keys and lists its tensors.
/// Adding a model type means adding one entry here and one builder.
/// </summary>
public static class ArchitectureFamilies
{
    private static readonly Dictionary<string, Func<ConfigFields, string, ModelArchitecture>> Builders = new(StringComparer.Ordinal)
    {
        ["llama"] = LlamaFamily.Build,
        ["mistral"] = LlamaFamily.Build,
        ["mixtral"] = LlamaFamily.Build,
        ["qwen2"] = LlamaFamily.Build,
        ["qwen3"] = LlamaFamily.Build,
    };

    public static IReadOnlyCollection<string> Supported => Builders.Keys;

    public static ModelArchitecture Build(string modelType, ConfigFields cfg)
    {
        if (!Builders.TryGetValue(modelType, out var build))
            throw cfg.Invalid("model_type", $"\"{modelType}\" is not supported",
                $"Supported model types: {string.Join(", ", Builders.Keys.Order(StringComparer.Ordinal))}.");
        return build(cfg, modelType);
    }
}
