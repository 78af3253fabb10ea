using Afinado.Planner.Architecture;
using Afinado.Planner.Selection;
using Afinado.Training.Loop;

namespace Afinado.Training.Selection;

/// <summary>
/// Builds the trainer's <see cref="ParameterSelection"/> from the planner's shared <see cref="TrainableSelection"/>
/// (same glob semantics, same PEFT target matching, same adapter names), so the tensors the planner charges gradients and
/// optimizer state for are exactly the ones that get <c>requires_grad</c>.
/// </summary>
public static class SharedSelection
{
    public static TrainableSelection Create(ModelArchitecture arch, string method, IReadOnlyList<string> freeze,
        int loraRank, double loraAlpha, double loraDropout, IReadOnlyList<string> loraTargets) =>
        Create(arch, TrainingMethods.Parse(method), freeze, loraRank, loraAlpha, loraDropout, loraTargets);

    public static TrainableSelection Create(ModelArchitecture arch, TrainingMethod m, IReadOnlyList<string> freeze,
        int loraRank, double loraAlpha, double loraDropout, IReadOnlyList<string> loraTargets)
    {
        if (m == TrainingMethod.QLora)
            throw new InputError(TrainParameters.Method, "QLoRA's NF4 kernels need CUDA", $"Use {TrainParameters.Method} lora on the CPU.");
        var lora = m.UsesAdapters() ? new LoraConfig { Rank = loraRank, Alpha = loraAlpha, Dropout = loraDropout, Targets = loraTargets } : null;
        return TrainableSelection.Create(arch, m, freeze.Count > 0 ? freeze : null, lora);
    }

    public static ParameterSelection ToParameterSelection(TrainableSelection s) =>
        new(s.Method.Name(),
            s.TrainableBaseTensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal),
            s.AdaptedLinears.Select(t => t.Module).ToList(),
            s.Lora?.Rank ?? 0, s.Lora?.Alpha ?? 0, s.Lora?.Dropout ?? 0);

    public static ParameterSelection CreateParameterSelection(ModelArchitecture arch, string method, IReadOnlyList<string> freeze,
        int loraRank, double loraAlpha, double loraDropout, IReadOnlyList<string> loraTargets) =>
        ToParameterSelection(Create(arch, method, freeze, loraRank, loraAlpha, loraDropout, loraTargets));

    public static ParameterSelection CreateParameterSelection(ModelArchitecture arch, TrainingMethod method, IReadOnlyList<string> freeze,
        int loraRank, double loraAlpha, double loraDropout, IReadOnlyList<string> loraTargets) =>
        ToParameterSelection(Create(arch, method, freeze, loraRank, loraAlpha, loraDropout, loraTargets));
}
