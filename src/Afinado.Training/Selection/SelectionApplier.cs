using Afinado.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Selection;

/// <summary>
/// Applies a <see cref="ParameterSelection"/> to a model: adds the LoRA adapters, then sets <c>requires_grad</c> so
/// that exactly the selected base tensors and every adapter train. Frozen parameters never get a <c>.grad</c>, and the
/// optimizers only ever see <see cref="Trainable"/>, so they hold no state for frozen ones.
/// </summary>
public static class SelectionApplier
{
    public static IReadOnlyList<(string Name, Parameter Parameter)> Apply(LlamaForCausalLM model, ParameterSelection selection)
    {
        if (selection.UsesLora)
        {
            var linears = model.Linears().ToDictionary(l => l.Path, l => l.Layer, StringComparer.Ordinal);
            foreach (var path in selection.AdaptedModules)
            {
                if (!linears.TryGetValue(path, out var layer))
                    throw new InvalidOperationException($"LoRA target {path} is not a linear layer of the model.");
                layer.AddLora(selection.LoraRank, selection.LoraAlpha, selection.LoraDropout);
            }
        }
        foreach (var (name, p) in model.named_parameters())
            p.requires_grad = selection.TrainableBaseTensors.Contains(name) || IsAdapter(name);
        return Trainable(model);
    }

    public static IReadOnlyList<(string Name, Parameter Parameter)> Trainable(nn.Module model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();

    public static bool IsAdapter(string name) => name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal);

    /// <summary>Folds every adapter into its base weight (export): the model becomes plain Hugging Face layout again.</summary>
    public static void MergeAdapters(LlamaForCausalLM model)
    {
        foreach (var (_, layer) in model.Linears().ToList()) layer.MergeLora();
    }

    /// <summary>PEFT's <c>print_trainable_parameters()</c> line.</summary>
    public static string PeftSummary(nn.Module model)
    {
        long all = model.parameters().Sum(p => p.numel());
        long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
        return FormattableString.Invariant($"trainable params: {trainable:N0} || all params: {all:N0} || trainable%: {100.0 * trainable / all:F4}");
    }
}
