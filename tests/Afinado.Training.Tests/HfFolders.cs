using Afinado.Planner.Architecture;
using Afinado.Training.IO;
using Afinado.Training.Models;

namespace Afinado.TestSupport;

/// <summary>Small Hugging Face model folders for tests: a config, seeded random weights, and a package's real tokenizer
/// files (tokenizer.json, tokenizer_config.json with its chat template).</summary>
public static class HfFolders
{
    public static string Create(string dir, string configJson, string tokenizerPackage, int seed)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), configJson);
        TorchSharp.torch.manual_seed(seed);
        using (var model = new LlamaForCausalLM(HfConfigReader.Parse(configJson, "config.json")))
            ModuleWeights.Save(model, Path.Combine(dir, "model.safetensors"));
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(NpmData.Models(tokenizerPackage), f), Path.Combine(dir, f));
        return dir;
    }
}
