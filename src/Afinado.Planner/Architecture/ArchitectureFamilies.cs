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
        ["qwen2_moe"] = LlamaFamily.Build,
        ["qwen3_moe"] = LlamaFamily.Build,
        ["gemma"] = LlamaFamily.Build,
        ["gemma2"] = LlamaFamily.Build,
        ["gemma3_text"] = LlamaFamily.Build,
        ["gemma3"] = Gemma3Family.Build,
        ["olmo2"] = LlamaFamily.Build,
        ["granite"] = LlamaFamily.Build,
        ["smollm3"] = LlamaFamily.Build,
        ["phi3"] = Phi3Family.Build,
        ["phimoe"] = PhimoeFamily.Build,
        ["phi"] = PhiFamily.Build,
        ["gpt2"] = Gpt2Family.Build,
        ["gpt_bigcode"] = GptBigCodeFamily.Build,
        ["gpt_neox"] = GptNeoXFamily.Build,
        ["falcon"] = FalconFamily.Build,
        ["gpt_oss"] = GptOssFamily.Build,
        ["deepseek_v2"] = DeepseekFamily.Build,
        ["deepseek_v3"] = DeepseekFamily.Build,
        ["llama4"] = Llama4Family.Build,
        ["qwen2_5_vl"] = Qwen25VlFamily.Build,
        ["qwen3_vl"] = Qwen3VlFamily.Build,
        ["mistral3"] = Mistral3Family.Build,
        ["mllama"] = MllamaFamily.Build,
        ["cohere"] = CohereFamily.Build,
        ["cohere2"] = CohereFamily.Build,
        ["llama4_text"] = Llama4Family.Build,
    };

    public static IReadOnlyCollection<string> Supported => Builders.Keys;

    public static ModelArchitecture Build(string modelType, ConfigFields cfg)
    {
        // Checked for every model type: a family that reads no layer_types (Qwen3 without sliding windows) would otherwise
        // plan a linear-attention layer as attention, and an unknown type's hybrid config says why its checkpoint is refused too.
        RecurrentLayers.Refuse(cfg);
        if (!Builders.TryGetValue(modelType, out var build))
        {
            throw cfg.Invalid("model_type", $"\"{Shorten(modelType)}\" is not supported",
                $"Supported model types: {string.Join(", ", Builders.Keys.Order(StringComparer.Ordinal))}; any other decoder is planned from its checkpoint when the .safetensors files (or model.safetensors.index.json) sit beside config.json and {Fit.PlanParameters.Model} names that folder.");
        }
        return ArchitectureLimits.Check(build(cfg, modelType), cfg);
    }

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
