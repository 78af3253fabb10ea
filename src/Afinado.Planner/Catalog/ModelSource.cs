using Afinado.Planner.Architecture;
using Afinado.Planner.Fit;

namespace Afinado.Planner.Catalog;

/// <summary>Resolves what the user typed after <c>--model</c>: a catalog id, a config.json path, or a model folder.</summary>
public static class ModelSource
{
    public static ModelArchitecture Resolve(string model)
    {
        if (string.IsNullOrWhiteSpace(model))
            throw new InputError(PlanParameters.Model, "is empty", "Give a catalog id such as meta-llama/Llama-3.1-8B, a config.json path, or a model folder.");
        if (Directory.Exists(model))
        {
            var config = Path.Combine(model, "config.json");
            if (!File.Exists(config))
                throw new InputError(PlanParameters.Model, $"folder \"{model}\" has no config.json", $"Put the model's Hugging Face config.json in the folder, or point {PlanParameters.Model} at the file.");
            return HfConfigReader.ReadFile(config);
        }
        if (File.Exists(model))
            return HfConfigReader.ReadFile(model);
        if (ModelCatalog.Contains(model))
            return ModelCatalog.Get(model);
        throw new InputError(PlanParameters.Model, $"\"{model}\" is neither a file, a folder, nor a catalog id",
            $"Catalog ids: {string.Join(", ", ModelCatalog.Ids)}.");
    }
}
