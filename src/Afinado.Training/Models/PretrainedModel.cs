using Afinado.Planner;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Inputs;
using Afinado.Planner.Safetensors;
using Afinado.Training.IO;
using Afinado.Planner.Memory;
using Afinado.Training.Loop;

namespace Afinado.Training.Models;

/// <summary>
/// Opens a Hugging Face model folder (config.json + model.safetensors, or sharded model-0000x-of-0000y.safetensors with
/// model.safetensors.index.json) as a <see cref="LlamaForCausalLM"/>. The architecture comes from the planner's reader.
/// </summary>
public static class PretrainedModel
{
    public static LlamaForCausalLM Load(string folder, AttentionKernel attention = AttentionKernel.Sdpa)
    {
        var arch = ModelSource.Resolve(folder);
        var model = new LlamaForCausalLM(arch, attention);
        foreach (var file in WeightFiles(folder))
            ModuleWeights.Load(model, file, strict: false, ignoreExtra: IgnoredExtra(arch));
        EnsureComplete(model, folder);
        return model;
    }

    /// <summary>The safetensors files that hold a folder's weights, in shard order.</summary>
    public static IReadOnlyList<string> WeightFiles(string folder)
    {
        var single = Path.Combine(folder, "model.safetensors");
        if (File.Exists(single)) return [single];
        var index = Path.Combine(folder, "model.safetensors.index.json");
        // The planner's reader: checked JSON, shard names confined to the folder.
        if (File.Exists(index))
            return SafetensorsCheckpoint.ReadWeightMap(index).Values.Distinct().Order(StringComparer.Ordinal)
                .Select(f => Path.Combine(folder, f)).ToList();
        throw new InputError(RunParameters.Model, $"folder \"{folder}\" has no model.safetensors or model.safetensors.index.json",
            "Download the weights as safetensors (e.g. `huggingface-cli download ORG/NAME --include '*.safetensors' config.json`).");
    }

    private static Func<string, bool> IgnoredExtra(ModelArchitecture arch) =>
        name => (arch.TiedEmbeddings && name == "lm_head.weight") || name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    private static void EnsureComplete(LlamaForCausalLM model, string folder)
    {
        var have = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in WeightFiles(folder))
        {
            using var fs = InputFile.Open(file, InputKind.SafetensorsFile);
            foreach (var e in SafeTensors.ReadHeader(fs, file, out _)) have.Add(e.Name);
        }
        var missing = model.state_dict().Keys.Where(k => !have.Contains(k)).ToList();
        if (missing.Count > 0)
            throw new InputError(folder, $"weights lack {missing.Count} tensors the config implies (first: {missing[0]})", "Check that config.json belongs to these weights.");
    }
}
