using System.Globalization;
using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

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
    private readonly bool[] _trainable;
    private readonly bool[] _adapted;
    private readonly ArchitectureFacts _facts;
    private IReadOnlyList<ParameterTensor>? _trainableTensors, _frozenTensors, _adaptedLinears;
    private HashSet<string>? _adapterNames;

    private TrainableSelection(ModelArchitecture arch, ArchitectureFacts facts, TrainingMethod method, IReadOnlyList<TensorPattern> freeze,
        LoraConfig? lora, bool[] trainable, bool[] adapted, bool[]? stackAdapted = null, IReadOnlyList<string>? notes = null)
    {
        _stackAdapted = stackAdapted ?? new bool[trainable.Length];
        Notes = notes ?? [];
        Architecture = arch;
        _facts = facts;
        Method = method;
        FreezePatterns = freeze;
        Lora = lora;
        _trainable = trainable;
        _adapted = adapted;
        BaseParameters = facts.ParameterCount;
        var tensors = arch.Tensors;
        for (int i = 0; i < trainable.Length; i++)
        {
            if (trainable[i]) TrainableBaseParameters += facts.Elements[i];
            if (adapted[i])
            {
                AdapterCount += 2;
                var t = tensors[i];
                // A stacked [E, in, out] expert weight (PEFT ParamWrapper): A [r·E, in], B [out, r·E]; a linear [out, in]: A [r, in], B [out, r].
                long elements = t.IsExpertStackWeight
                    ? (long)lora!.Rank * t.StackedExperts * (t.Shape[1] + t.Shape[2])
                    : (long)lora!.Rank * (t.Shape[0] + t.Shape[1]);
                AdapterParameters += elements;
                if (t.VisionLinear) VisionAdapterParameters += elements;
            }
        }
        foreach (var stack in StackedExpertGroups())
        {
            AdapterCount += 2;
            AdapterParameters += (long)lora!.Rank * stack.Experts * (stack.Rows + stack.Columns);
        }
    }

    private readonly bool[] _stackAdapted;

    /// <summary>A routed expert's linear that PEFT adapts as part of transformers 5's stacked parameter
    /// (<c>--lora-target-parameters mlp.experts.gate_up_proj</c> on a family whose checkpoint stores experts one by one).</summary>
    internal bool IsStackAdaptedAt(int index) => _stackAdapted[index];

    /// <summary>One stacked expert parameter of transformers 5 that target_parameters adapts: its layer, its name
    /// (gate_up_proj or down_proj), E experts and its [E, rows, columns] shape (gate_up: rows 2·I and columns h; down: rows
    /// h and columns I), built from the checkpoint's per-expert linears.</summary>
    internal sealed record StackedExpertGroup(int Layer, string Name, ParameterTensor First, int Experts, long Rows, long Columns)
    {
        public long Elements => Experts * Rows * Columns;
    }

    private List<StackedExpertGroup>? _stackGroups;

    internal IReadOnlyList<StackedExpertGroup> StackedExpertGroups()
    {
        if (_stackGroups is not null) return _stackGroups;
        var groups = new List<StackedExpertGroup>();
        var tensors = Architecture.Tensors;
        var byKey = new Dictionary<(int, bool), (ParameterTensor First, HashSet<int> Experts, long Rows, long Columns)>();
        for (int i = 0; i < tensors.Count; i++)
        {
            if (!_stackAdapted[i]) continue;
            var t = tensors[i];
            bool down = t.Role == TensorRole.MlpDown;
            var key = (t.Layer ?? -1, down);
            if (!byKey.TryGetValue(key, out var g)) g = (t, [], 0, t.InFeatures);
            g.Experts.Add(t.Expert!.Value);
            // The stack's rows are the outputs of one expert's linears (gate and up together for gate_up_proj).
            if (t.Expert == g.First.Expert) g.Rows += t.OutFeatures;
            byKey[key] = g;
        }
        foreach (var ((layer, down), g) in byKey.OrderBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2))
            groups.Add(new StackedExpertGroup(layer, down ? "down_proj" : "gate_up_proj", g.First, g.Experts.Count, g.Rows, g.Columns));
        return _stackGroups = groups;
    }

    private IReadOnlyList<LoraAdapterTensor>? _adapters;

    /// <summary>Number of adapter matrices (A and B per adapted linear).</summary>
    public int AdapterCount { get; }

    public ModelArchitecture Architecture { get; }
    public TrainingMethod Method { get; }
    /// <summary>Where the selection differs from what PEFT would do with the same flags, and why (shown with the plan).</summary>
    public IReadOnlyList<string> Notes { get; }
    public IReadOnlyList<TensorPattern> FreezePatterns { get; }
    /// <summary>The LoRA configuration for lora/qlora; null otherwise.</summary>
    public LoraConfig? Lora { get; }

    public IReadOnlyList<ParameterTensor> TrainableBaseTensors => _trainableTensors ??= Architecture.Tensors.Where((_, i) => _trainable[i]).ToList();
    public IReadOnlyList<ParameterTensor> FrozenBaseTensors => _frozenTensors ??= Architecture.Tensors.Where((_, i) => !_trainable[i]).ToList();
    /// <summary>The base linear weights that carry an adapter (lora/qlora).</summary>
    public IReadOnlyList<ParameterTensor> AdaptedLinears => _adaptedLinears ??= Architecture.Tensors.Where((_, i) => _adapted[i]).ToList();
    /// <summary>A then B for each adapted linear, in checkpoint order (built on first use; plans only need the counts).</summary>
    public IReadOnlyList<LoraAdapterTensor> Adapters => _adapters ??= BuildAdapters();

    private List<LoraAdapterTensor> BuildAdapters()
    {
        var list = new List<LoraAdapterTensor>(AdapterCount);
        var tensors = Architecture.Tensors;
        for (int i = 0; i < tensors.Count; i++)
        {
            if (!_adapted[i]) continue;
            var l = tensors[i];
            if (l.IsExpertStackWeight)
            {
                // Named after the parameter (two stacks share one experts module; PEFT nests a ParamWrapper per parameter).
                long rank = (long)Lora!.Rank * l.StackedExperts;
                list.Add(new(l.Name, [rank, l.Shape[1]], LoraFactor.A, l));
                list.Add(new(l.Name, [l.Shape[2], rank], LoraFactor.B, l));
                continue;
            }
            // A vision tower's linear is no text linear (InFeatures is 0 there): its [out, in] shape gives the widths.
            long inFeatures = l.VisionLinear ? l.Shape[1] : l.InFeatures, outFeatures = l.VisionLinear ? l.Shape[0] : l.OutFeatures;
            list.Add(new(_facts.Modules[i], [Lora!.Rank, inFeatures], LoraFactor.A, l));
            list.Add(new(_facts.Modules[i], [outFeatures, Lora.Rank], LoraFactor.B, l));
        }
        // PEFT's ParamWrapper reads a stack [E, rows, columns] positionally as [E, in, out]: lora_A [r·E, rows], lora_B [columns, r·E].
        foreach (var g in StackedExpertGroups())
        {
            string module = g.First.Module[..g.First.Module.LastIndexOf(".experts.", StringComparison.Ordinal)] + ".experts." + g.Name;
            long rank = (long)Lora!.Rank * g.Experts;
            list.Add(new(module, [rank, g.Rows], LoraFactor.A, g.First));
            list.Add(new(module, [g.Columns, rank], LoraFactor.B, g.First));
        }
        return list;
    }

    public long BaseParameters { get; }
    public long TrainableBaseParameters { get; }
    public long AdapterParameters { get; }
    /// <summary>Adapter parameters on the image encoder's and projector's linears (PEFT's all-linear reaches them): they
    /// require grad, yet a text step runs nothing through the tower, so backprop gives them no gradient and AdamW no state.</summary>
    public long VisionAdapterParameters { get; }
    /// <summary>Parameters with <c>requires_grad</c>: trainable base plus adapters (what PEFT counts as trainable).</summary>
    public long TrainableParameters => TrainableBaseParameters + AdapterParameters;
    /// <summary>Parameters a backprop text step gives a gradient and optimizer state: <see cref="TrainableParameters"/>
    /// less the vision tower's adapters.</summary>
    public long SteppedParameters => TrainableParameters - VisionAdapterParameters;
    /// <summary>Every parameter in the trained model, adapters included (what PEFT calls "all params").</summary>
    public long AllParameters => BaseParameters + AdapterParameters;

    public bool IsTrainable(ParameterTensor tensor) => IsTrainable(tensor.Name);

    /// <summary>True for a trainable base tensor or an adapter, by Hugging Face / PEFT name.</summary>
    public bool IsTrainable(string name) =>
        _facts.IndexByName.TryGetValue(name, out int i)
            ? _trainable[i]
            : (_adapterNames ??= Adapters.Select(a => a.Name).ToHashSet(StringComparer.Ordinal)).Contains(name);

    /// <summary>By position in <see cref="ModelArchitecture.Tensors"/> (the planner's hot path).</summary>
    internal bool IsTrainableAt(int index) => _trainable[index];
    internal bool IsAdaptedAt(int index) => _adapted[index];

    /// <summary>PEFT's <c>print_trainable_parameters()</c> line.</summary>
    public string PeftSummary =>
        string.Create(CultureInfo.InvariantCulture,
            $"trainable params: {TrainableParameters:N0} || all params: {AllParameters:N0} || trainable%: {100.0 * TrainableParameters / AllParameters:F4}");

    /// <summary>Everything trains.</summary>
    public static TrainableSelection Full(ModelArchitecture arch) => Create(arch, TrainingMethod.Full);

    /// <param name="vision">What full and freeze finetuning train of a multimodal model's image side (frozen by default;
    /// LoRA's targets decide for adapters).</param>
    public static TrainableSelection Create(ModelArchitecture arch, TrainingMethod method,
        IReadOnlyList<string>? freezePatterns = null, LoraConfig? lora = null, VisionTraining vision = VisionTraining.Frozen)
    {
        var patterns = (freezePatterns ?? []).Select(p => new TensorPattern(p)).ToList();
        if (method != TrainingMethod.Freeze && patterns.Count > 0)
            throw new InputError(JobParameters.FreezePatterns, $"patterns are only used with {JobParameters.Method} freeze (got {JobParameters.Method} {method.Name()})",
                method.UsesAdapters() ? (InputText)$"LoRA already freezes the whole base; drop {JobParameters.FreezePatterns}." : $"Use {JobParameters.Method} freeze to freeze matching tensors.");
        if (!method.UsesAdapters() && lora is not null)
            throw new InputError(JobParameters.LoraTargets, $"LoRA settings need {JobParameters.Method} lora or qlora (got {JobParameters.Method} {method.Name()})", $"Drop the LoRA flags or choose {JobParameters.Method} lora.");

        return method switch
        {
            TrainingMethod.Full => new(arch, ArchitectureFacts.Of(arch), method, patterns, null,
                arch.Tensors.Select(t => vision.Trains(t)).ToArray(), new bool[arch.Tensors.Count]),
            TrainingMethod.Freeze => FreezeSelection(arch, patterns, vision),
            _ => LoraSelection(arch, method, lora ?? new LoraConfig()),
        };
    }

    /// <summary>Distinct short names of the model's linear modules (<c>q_proj</c>, <c>down_proj</c>, <c>lm_head</c>, ...), in order.</summary>
    public static IReadOnlyList<string> LinearModuleNames(ModelArchitecture arch)
    {
        var f = ArchitectureFacts.Of(arch);
        // What PEFT's target_modules can adapt: nn.Linear modules (ArchitectureFacts.IsLinearModule), the vision tower's too.
        return f.ShortModules.Where((_, i) => f.IsLinearModule[i]).Distinct().ToList();
    }

    private static TrainableSelection FreezeSelection(ModelArchitecture arch, List<TensorPattern> patterns, VisionTraining vision)
    {
        if (patterns.Count == 0)
            throw new InputError(JobParameters.FreezePatterns, $"{JobParameters.Method} freeze needs at least one pattern", $"Add e.g. {JobParameters.FreezePatterns} 'model.embed_tokens' {JobParameters.FreezePatterns} 'model.layers.{{0..15}}'.");
        foreach (var p in patterns)
            if (!arch.Tensors.Any(t => p.Matches(t.Name)))
                throw new InputError(JobParameters.FreezePatterns, $"pattern \"{p}\" matches no tensor",
                    $"Tensor names look like {string.Join(", ", arch.Tensors.Take(3).Select(t => t.Name))}; '*' stays within a dotted segment, '**' crosses dots.");
        var trainable = arch.Tensors.Select(t => vision.Trains(t) && !patterns.Any(p => p.Matches(t.Name))).ToArray();
        if (!trainable.Any(x => x))
            throw new InputError(JobParameters.FreezePatterns, "the patterns freeze every tensor, so nothing would train", "Freeze fewer tensors.");
        return new(arch, ArchitectureFacts.Of(arch), TrainingMethod.Freeze, patterns, null, trainable, new bool[trainable.Length]);
    }

    private static TrainableSelection LoraSelection(ModelArchitecture arch, TrainingMethod method, LoraConfig lora)
    {
        lora.Validate();
        var facts = ArchitectureFacts.Of(arch);
        var tensors = arch.Tensors;
        bool allLinear = false;
        var named = new List<string>(lora.Targets.Count);
        foreach (var t in lora.Targets)
            if (string.Equals(t, LoraConfig.AllLinear, StringComparison.OrdinalIgnoreCase)) allLinear = true; else named.Add(t);
        foreach (var target in named)
        {
            bool found = false;
            for (int i = 0; i < tensors.Count && !found; i++) found = facts.IsLinearModule[i] && ModuleMatches(facts.Modules[i], target);
            for (int i = 0; i < tensors.Count; i++)
                if (facts.IsLinearModule[i] && facts.IsExpertRouter[i] && ModuleMatches(facts.Modules[i], target) && RouterAdapterProblem(arch) is { } problem)
                    throw new InputError(JobParameters.LoraTargets, $"\"{target}\" adapts {facts.Modules[i]}: {problem}",
                        $"Leave the router out of {JobParameters.LoraTargets} (all-linear leaves it out too).");
            if (!found)
                throw new InputError(JobParameters.LoraTargets, $"\"{target}\" is not a linear module of {Describe(arch)}" +
                    (arch.RoutedExpertsAreParameters ? " (transformers 5 holds its routed experts and router as parameters, not nn.Linear modules)" : ""),
                    $"Its linear modules are: {string.Join(", ", LinearModuleNames(arch))} (or use all-linear).{InputText.When(arch.RoutedExpertsAreParameters,
                        $" PEFT adapts the stacked experts through target_parameters: {JobParameters.LoraTargetParameters} mlp.experts.gate_up_proj,mlp.experts.down_proj (with {JobParameters.LoraDropout} 0).")}");
        }
        var adapted = new bool[tensors.Count];
        // target_parameters: PEFT matches a parameter whose name equals the target or ends with "." + target.
        var stackAdapted = new bool[tensors.Count];
        foreach (var target in lora.TargetParameters)
        {
            bool found = false;
            // transformers 5 stacks a checkpoint's per-expert linears into experts.gate_up_proj and experts.down_proj.
            if (arch.RoutedExpertsAreParameters && StackedRoles(target) is { } roles)
                for (int i = 0; i < tensors.Count; i++)
                    if (tensors[i].Expert is not null && facts.IsLinear[i] && roles.Contains(tensors[i].Role))
                        stackAdapted[i] = found = true;
            for (int i = 0; i < tensors.Count; i++)
            {
                if (!ModuleMatches(tensors[i].Name, target)) continue;
                if (!tensors[i].IsExpertStackWeight)
                    throw new InputError(JobParameters.LoraTargetParameters, $"\"{target}\" names {tensors[i].Name}, which is not a stacked expert weight",
                        $"Adapt nn.Linear modules with {JobParameters.LoraTargets}; {JobParameters.LoraTargetParameters} takes parameters such as mlp.experts.gate_up_proj.");
                adapted[i] = found = true;
            }
            if (!found)
                throw new InputError(JobParameters.LoraTargetParameters, $"\"{target}\" matches no parameter of {Describe(arch)}",
                    StackedNames(arch) is { Count: > 0 } names ? (InputText)$"Its stacked expert parameters are: {string.Join(", ", names)}."
                    : arch.RoutedExpertsAreParameters ? (InputText)"Its stacked expert parameters are: mlp.experts.gate_up_proj, mlp.experts.down_proj."
                    : $"{Describe(arch)} has no stacked expert parameters; use {JobParameters.LoraTargets}.");
        }
        // PEFT's all-linear takes every nn.Linear but the output head, routers included; a router that a LoRA layer cannot
        // serve is left out, as LoraConfig(target_modules="all-linear", exclude_modules=["<router>"]) would.
        var notes = new List<string>();
        string? leftOut = null;
        for (int i = 0; i < tensors.Count; i++)
        {
            if (!facts.IsLinearModule[i]) continue;
            bool hit = allLinear && tensors[i].Role != TensorRole.LmHead;
            if (hit && facts.IsExpertRouter[i] && RouterAdapterProblem(arch) is not null)
            {
                leftOut ??= facts.ShortModules[i];
                hit = false;
            }
            foreach (var t in named) hit |= ModuleMatches(facts.Modules[i], t);
            adapted[i] = hit;
        }
        if (leftOut is not null)
            notes.Add($"all-linear leaves out the MoE router ({leftOut}): {RouterAdapterProblem(arch)}; " +
                $"the plan is LoraConfig(target_modules=\"all-linear\", exclude_modules=[\"{leftOut}\"]), which PEFT runs");
        return new(arch, facts, method, [], lora, new bool[tensors.Count], adapted, stackAdapted, notes);
    }

    /// <summary>Why a LoRA layer on this model's nn.Linear router would not train (null: it would, as on PhiMoE's).</summary>
    private static string? RouterAdapterProblem(ModelArchitecture arch) => arch.RouterCall switch
    {
        // peft/tuners/lora/layer.py Linear.forward: result = self.base_layer(x); torch_result_dtype = result.dtype.
        RouterCall.ReturnsTuple => "its forward returns (router_scores, router_logits), and PEFT's LoRA layer reads that " +
            "tuple's dtype at the first step (AttributeError: 'tuple' object has no attribute 'dtype')",
        // DeepseekV2Moe.forward: F.linear(hidden_states.float(), self.gate.weight.float()).
        RouterCall.WeightRead => "the block reads its weight directly (F.linear(x.float(), gate.weight.float())), so a LoRA " +
            "layer there never runs: its adapter gets no gradient, and DDP stops on the unused parameters",
        _ => null,
    };

    /// <summary>The per-expert linears a transformers 5 stack name covers: <c>experts.gate_up_proj</c> the gate and up
    /// projections, <c>experts.down_proj</c> the down projection; null for any other name.</summary>
    private static TensorRole[]? StackedRoles(string target) =>
        target == "experts.gate_up_proj" || target.EndsWith(".experts.gate_up_proj", StringComparison.Ordinal) ? [TensorRole.MlpGate, TensorRole.MlpUp, TensorRole.MlpGateUp]
        : target == "experts.down_proj" || target.EndsWith(".experts.down_proj", StringComparison.Ordinal) ? [TensorRole.MlpDown]
        : null;

    /// <summary>Short names of the stacked expert weights (<c>experts.gate_up_proj</c>), for error messages.</summary>
    private static List<string> StackedNames(ModelArchitecture arch) =>
        arch.Tensors.Where(t => t.IsExpertStackWeight).Select(t => string.Join('.', t.Name.Split('.')[^2..])).Distinct().ToList();

    private static bool ModuleMatches(string module, string target) =>
        module == target || module.EndsWith("." + target, StringComparison.Ordinal);

    private static string Describe(ModelArchitecture arch) => string.IsNullOrEmpty(arch.Name) ? arch.ModelType : arch.Name;
}
