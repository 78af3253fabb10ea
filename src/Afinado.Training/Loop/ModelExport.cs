using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Training.IO;
using Afinado.Training.Models;
using Afinado.Training.Selection;
using static TorchSharp.torch;

namespace Afinado.Training.Loop;

/// <summary>
/// Writes the trained model as a Hugging Face folder: <c>model.safetensors</c> (LoRA merged into the weights) and
/// <c>config.json</c>; for LoRA runs also a PEFT adapter folder (<c>adapter_model.safetensors</c> with
/// <c>base_model.model.</c>-prefixed names, <c>adapter_config.json</c>) so PEFT can load the unmerged adapter.
/// </summary>
public static class ModelExport
{
    public static void Export(LlamaForCausalLM model, TrainConfig config, ParameterSelection selection, string modelDir, string? adapterDir)
    {
        Directory.CreateDirectory(modelDir);
        if (selection.UsesLora && adapterDir is not null)
        {
            Directory.CreateDirectory(adapterDir);
            var adapters = model.named_parameters().Where(p => SelectionApplier.IsAdapter(p.name))
                .ToDictionary(p => "base_model.model." + p.name, p => (Tensor)p.parameter);
            AtomicFile.Write(Path.Combine(adapterDir, "adapter_model.safetensors"), s => SafeTensors.Write(s, adapters, new Dictionary<string, string> { ["format"] = "pt" }));
            var targets = selection.AdaptedModules.Select(m => m[(m.LastIndexOf('.') + 1)..]).Distinct().ToArray();
            var adapterConfig = new JsonObject
            {
                ["peft_type"] = "LORA",
                ["task_type"] = "CAUSAL_LM",
                ["base_model_name_or_path"] = config.BaseModel,
                ["r"] = selection.LoraRank,
                ["lora_alpha"] = selection.LoraAlpha,
                ["lora_dropout"] = selection.LoraDropout,
                ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t!).ToArray()),
                ["bias"] = "none",
                ["fan_in_fan_out"] = false,
                ["inference_mode"] = true,
            };
            AtomicFile.WriteAllText(Path.Combine(adapterDir, "adapter_config.json"), adapterConfig.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        SelectionApplier.MergeAdapters(model);
        ModuleWeights.Save(model, Path.Combine(modelDir, "model.safetensors"));
        AtomicFile.WriteAllText(Path.Combine(modelDir, "config.json"), config.ModelConfigJson);
        // The base folder's tokenizer files travel with the model, so the exported folder generates and reloads as is.
        if (config.BaseModel is not null)
            foreach (var name in TokenizerFiles)
                if (File.Exists(Path.Combine(config.BaseModel, name)))
                    AtomicFile.Write(Path.Combine(modelDir, name), s => { using var f = File.OpenRead(Path.Combine(config.BaseModel, name)); f.CopyTo(s); });
    }

    /// <summary>What transformers' AutoTokenizer reads from a folder.</summary>
    private static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
}
