using System.Globalization;
using Afinado.Planner.Architecture;

namespace Afinado.Planner.Selection;

/// <summary>
/// Which parameters train, shared by the planner (gradients and optimizer state are charged only for these) and the
/// trainer (it sets <c>requires_grad</c> from <see cref="IsTrainable(string)"/> and creates <see cref="Adapters"/>).
/// <list type="bullet">
/// <item><c>full</c>: every base tensor trains.</item>
/// <item><c>freeze</c>: base tensors matched by a <see cref="TensorPattern"/> are frozen, the rest train.</item>
/// <item><c>lora</c>/<c>qlora</c>: the base is frozen; A/B adapters are added to each target linear (PEFT semantics:
/// a target matches a module whose name equals it or ends with <c>.target</c>; <c>all-linear</c> is every linear
/// except the output head).</item>
/// </list>
/// </summary>
public sealed class TrainableSelection
{
    private readonly HashSet<string> _trainable;

    private TrainableSelection(ModelArchitecture arch, TrainingMethod method, IReadOnlyList<TensorPattern> freeze,
        LoraConfig? lora, HashSet<string> trainable, IReadOnlyList<ParameterTensor> adapted, IReadOnlyList<LoraAdapterTensor> adapters)
    {
        Architecture = arch;
        Method = method;
        FreezePatterns = freeze;
        Lora = lora;
        _trainable = trainable;
        AdaptedLinears = adapted;
        Adapters = adapters;
        TrainableBaseTensors = arch.Tensors.Where(t => trainable.Contains(t.Name)).ToList();
        FrozenBaseTensors = arch.Tensors.Where(t => !trainable.Contains(t.Name)).ToList();
        BaseParameters = arch.ParameterCount;
        TrainableBaseParameters = TrainableBaseTensors.Sum(t => t.Elements);
        AdapterParameters = adapters.Sum(a => a.Elements);
    }

    public ModelArchitecture Architecture { get; }
    public TrainingMethod Method { get; }
    public IReadOnlyList<TensorPattern> FreezePatterns { get; }
    /// <summary>The LoRA configuration for lora/qlora; null otherwise.</summary>
    public LoraConfig? Lora { get; }

    public IReadOnlyList<ParameterTensor> TrainableBaseTensors { get; }
    public IReadOnlyList<ParameterTensor> FrozenBaseTensors { get; }
    /// <summary>The base linear weights that carry an adapter (lora/qlora).</summary>
    public IReadOnlyList<ParameterTensor> AdaptedLinears { get; }
    public IReadOnlyList<LoraAdapterTensor> Adapters { get; }

    public long BaseParameters { get; }
    public long TrainableBaseParameters { get; }
    public long AdapterParameters { get; }
    /// <summary>Parameters that receive gradients and optimizer state: trainable base plus adapters.</summary>
    public long TrainableParameters => TrainableBaseParameters + AdapterParameters;
    /// <summary>Every parameter in the trained model, adapters included (what PEFT calls "all params").</summary>
    public long AllParameters => BaseParameters + AdapterParameters;

    public bool IsTrainable(ParameterTensor tensor) => _trainable.Contains(tensor.Name);

    /// <summary>True for a trainable base tensor or an adapter, by Hugging Face / PEFT name.</summary>
    public bool IsTrainable(string name) => _trainable.Contains(name) || Adapters.Any(a => a.Name == name);

    /// <summary>PEFT's <c>print_trainable_parameters()</c> line.</summary>
    public string PeftSummary =>
        string.Create(CultureInfo.InvariantCulture,
            $"trainable params: {TrainableParameters:N0} || all params: {AllParameters:N0} || trainable%: {100.0 * TrainableParameters / AllParameters:F4}");

    /// <summary>Everything trains.</summary>
    public static TrainableSelection Full(ModelArchitecture arch) => Create(arch, TrainingMethod.Full);

    public static TrainableSelection Create(ModelArchitecture arch, TrainingMethod method,
        IReadOnlyList<string>? freezePatterns = null, LoraConfig? lora = null)
    {
        var patterns = (freezePatterns ?? []).Select(p => new TensorPattern(p)).ToList();
        if (method != TrainingMethod.Freeze && patterns.Count > 0)
            throw new InputError("--freeze", $"patterns are only used with --method freeze (got --method {method.Name()})",
                method.UsesAdapters() ? "LoRA already freezes the whole base; drop --freeze." : "Use --method freeze to freeze matching tensors.");
        if (!method.UsesAdapters() && lora is not null)
            throw new InputError("--lora-targets", $"LoRA settings need --method lora or qlora (got --method {method.Name()})", "Drop the LoRA flags or choose --method lora.");

        return method switch
        {
            TrainingMethod.Full => new(arch, method, patterns, null, arch.Tensors.Select(t => t.Name).ToHashSet(), [], []),
            TrainingMethod.Freeze => FreezeSelection(arch, patterns),
            _ => LoraSelection(arch, method, lora ?? new LoraConfig()),
        };
    }

    /// <summary>Distinct short names of the model's linear modules (<c>q_proj</c>, <c>down_proj</c>, <c>lm_head</c>, ...), in order.</summary>
    public static IReadOnlyList<string> LinearModuleNames(ModelArchitecture arch) =>
        arch.Tensors.Where(t => t.IsLinearWeight).Select(t => t.Module[(t.Module.LastIndexOf('.') + 1)..]).Distinct().ToList();

    private static TrainableSelection FreezeSelection(ModelArchitecture arch, List<TensorPattern> patterns)
    {
        if (patterns.Count == 0)
            throw new InputError("--freeze", "--method freeze needs at least one pattern", "Add e.g. --freeze 'model.embed_tokens' --freeze 'model.layers.{0..15}'.");
        foreach (var p in patterns)
            if (!arch.Tensors.Any(t => p.Matches(t.Name)))
                throw new InputError("--freeze", $"pattern \"{p}\" matches no tensor",
                    $"Tensor names look like {string.Join(", ", arch.Tensors.Take(3).Select(t => t.Name))}; '*' stays within a dotted segment, '**' crosses dots.");
        var trainable = arch.Tensors.Where(t => !patterns.Any(p => p.Matches(t.Name))).Select(t => t.Name).ToHashSet();
        if (trainable.Count == 0)
            throw new InputError("--freeze", "the patterns freeze every tensor, so nothing would train", "Freeze fewer tensors.");
        return new(arch, TrainingMethod.Freeze, patterns, null, trainable, [], []);
    }

    private static TrainableSelection LoraSelection(ModelArchitecture arch, TrainingMethod method, LoraConfig lora)
    {
        lora.Validate();
        var linears = arch.Tensors.Where(t => t.IsLinearWeight).ToList();
        var adapted = new List<ParameterTensor>();
        bool allLinear = lora.Targets.Any(t => string.Equals(t, LoraConfig.AllLinear, StringComparison.OrdinalIgnoreCase));
        foreach (var target in lora.Targets.Where(t => !string.Equals(t, LoraConfig.AllLinear, StringComparison.OrdinalIgnoreCase)))
        {
            if (!linears.Any(l => ModuleMatches(l.Module, target)))
                throw new InputError("--lora-targets", $"\"{target}\" is not a linear module of {Describe(arch)}",
                    $"Its linear modules are: {string.Join(", ", LinearModuleNames(arch))} (or use all-linear).");
        }
        foreach (var l in linears)
        {
            bool hit = allLinear ? l.Role != TensorRole.LmHead : false;
            hit |= lora.Targets.Any(t => ModuleMatches(l.Module, t));
            if (hit) adapted.Add(l);
        }
        var adapters = new List<LoraAdapterTensor>(adapted.Count * 2);
        foreach (var l in adapted)
        {
            long outDim = l.Shape[0], inDim = l.Shape[1];
            adapters.Add(new($"{l.Module}.lora_A.weight", [lora.Rank, inDim], LoraFactor.A, l));
            adapters.Add(new($"{l.Module}.lora_B.weight", [outDim, lora.Rank], LoraFactor.B, l));
        }
        return new(arch, method, [], lora, [], adapted, adapters);
    }

    private static bool ModuleMatches(string module, string target) =>
        module == target || module.EndsWith("." + target, StringComparison.Ordinal);

    private static string Describe(ModelArchitecture arch) => string.IsNullOrEmpty(arch.Name) ? arch.ModelType : arch.Name;
}
