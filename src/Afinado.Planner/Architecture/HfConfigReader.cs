using System.Text.Json;
using Afinado.Planner.Inputs;

namespace Afinado.Planner.Architecture;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> into a <see cref="ModelArchitecture"/>.
/// Every field read is validated; a missing, negative or absurd value raises <see cref="InputError"/> naming the key.
/// </summary>
public static class HfConfigReader
{
    /// <summary>Parse config text. <paramref name="source"/> names the file in error messages.</summary>
    /// <param name="checkpointFolder">Where the checkpoint's safetensors files would be: a model_type without a family
    /// is then planned from their headers (<see cref="GenericDecoder"/>) instead of refused.</param>
    public static ModelArchitecture Parse(string json, string source = "config.json", string? checkpointFolder = null)
    {
        // Checked up front: lone surrogate escapes, duplicate keys and out-of-range numbers are input errors here, not crashes later.
        using (var doc = InputJson.Parse(json, source, InputKind.Config, lenient: true))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InputError(source, "is not a JSON object", "Pass the model's Hugging Face config.json unchanged.");
            var cfg = new ConfigFields(doc.RootElement, source);
            var modelType = cfg.RequiredString("model_type");
            string? dtype = ConfigDtype(cfg);
            if (!ArchitectureFamilies.Supported.Contains(modelType) && checkpointFolder is not null && HasSafetensors(checkpointFolder))
                return ArchitectureLimits.Check(GenericDecoder.Build(cfg, modelType, Safetensors.SafetensorsCheckpoint.Open(checkpointFolder)), cfg) with { ConfigDtype = dtype };
            var arch = ArchitectureFamilies.Build(modelType, cfg) with { ConfigDtype = dtype };
            if (dtype is null && checkpointFolder is not null && HasSafetensors(checkpointFolder))
                arch = arch with { CheckpointFloatDtype = UniformFloatDtype(checkpointFolder) };
            // Every family's config may carry a GPTQ/AWQ/bitsandbytes quantization_config; gpt_oss and DeepSeek read theirs.
            return CheckpointQuantization.Read(cfg, arch) is { } quantization ? arch with { Quantization = quantization } : arch;
        }
    }

    public static ModelArchitecture ReadFile(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new InputError(InputFile.Describe(path), "does not exist", "Give a catalog id (see `afinado plan --list-models`), a config.json path, or a folder holding config.json.");
        string text = InputFile.ReadAllText(path, InputKind.Config);
        string folder = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        return Parse(text, InputFile.Describe(path), folder) with { Name = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path))) ?? path };
    }

    /// <summary>For <c>inspect</c>: why the config at <paramref name="path"/> with these tensors cannot be planned because of
    /// linear-attention or state-space layers (<see cref="RecurrentLayers"/>), as "key: evidence"; null when it has none.</summary>
    public static string? RecurrentLayersIn(string path, IEnumerable<string> tensorNames)
    {
        string source = InputFile.Describe(path);
        using var doc = InputJson.Parse(InputFile.ReadAllText(path, InputKind.Config), source, InputKind.Config, lenient: true);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) return null;
        return RecurrentLayers.Find(new ConfigFields(doc.RootElement, source), tensorNames) is var (key, evidence) ? $"{key}: {evidence}" : null;
    }

    /// <summary>config.json's <c>dtype</c> (transformers ≥ 4.56) or <c>torch_dtype</c>, at the top or in <c>text_config</c>
    /// (multimodal configs name it there); null when none is a string.</summary>
    private static string? ConfigDtype(ConfigFields cfg)
    {
        static string? Named(JsonElement o) =>
            o.ValueKind != JsonValueKind.Object ? null
            : o.TryGetProperty("dtype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()
            : o.TryGetProperty("torch_dtype", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()
            : null;
        return (cfg.Element("dtype") ?? cfg.Element("torch_dtype")) is { ValueKind: JsonValueKind.String } top ? top.GetString()
            : cfg.Element("text_config") is { } text ? Named(text) : null;
    }

    /// <summary>The one floating dtype of the checkpoint's tensors (headers only), as torch names it; null when they mix
    /// floating dtypes or the headers cannot be read (the plan does not need them for a known family: only its note on
    /// the default load does).</summary>
    private static string? UniformFloatDtype(string folder)
    {
        try
        {
            var floats = Safetensors.SafetensorsCheckpoint.Open(folder).Tensors.Select(t => t.Dtype switch
            {
                "F32" => "float32", "BF16" => "bfloat16", "F16" => "float16", _ => null,
            }).OfType<string>().Distinct().ToList();
            return floats.Count == 1 ? floats[0] : null;
        }
        catch (InputError)
        {
            return null;
        }
    }

    private static bool HasSafetensors(string folder) =>
        File.Exists(Path.Combine(folder, Safetensors.SafetensorsCheckpoint.IndexFileName)) || Directory.EnumerateFiles(folder, "*.safetensors").Any();
}
