using Afinado.Planner.Architecture;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Memory;

/// <summary>A linear projection inside a layer, as the activation ledger sees it.</summary>
/// <summary>One linear as a layer uses it. <see cref="CheckpointBytes"/>: the bytes of the tensors a GPTQ/AWQ/bitsandbytes
/// checkpoint stores for it (0 when the checkpoint has no such format or keeps this linear 16-bit).</summary>
internal readonly record struct LinearUse(long In, long Out, bool Trainable, bool Lora, long CheckpointBytes = 0);

/// <summary>Per-layer facts the activation ledger needs, computed once per (architecture, selection).</summary>
internal sealed class LayerProfile
{
    public bool InputRequiresGrad;
    public bool Norm1Trainable, Norm2Trainable;
    public int NormCount;
    public bool QkNormTrainable;
    /// <summary>Multi-head latent attention: q_a_layernorm and kv_a_layernorm train (they are not the layer's two norms).</summary>
    public bool QLatentNormTrainable, KvLatentNormTrainable;
    /// <summary>A sliding-window (or chunked) attention layer.</summary>
    public bool Sliding;
    /// <summary>Llama 4's NoPE layer: no rotary, no q/k norm.</summary>
    public bool NoRope;
    public readonly List<LinearUse> AttnIn = [];
    public LinearUse? AttnOut;
    public readonly List<LinearUse> MlpIn = [];
    public LinearUse? MlpDown;
    public LinearUse? Router;
    /// <summary>Qwen2-MoE's <c>shared_expert_gate</c> ([1, hidden] nn.Linear): the second router-role linear of a layer.</summary>
    public LinearUse? SharedExpertGate;
    /// <summary>For MoE: one representative expert's linears (experts share shapes); trainability is the OR over experts.</summary>
    public bool ExpertsTrainable, ExpertsLora, ExpertDownTrainable, ExpertDownLora;
    /// <summary>Elements of this layer's stacked expert weights adapted through PEFT's target_parameters (ParamWrapper):
    /// each forward adds the merged delta and the expert matmuls save the merged weight W + ΔW for backward.</summary>
    public long ExpertStackLoraElements;

    /// <summary>Any parameter (or adapter) in the layer trains.</summary>
    public bool AnyTrainable;
    /// <summary>Some q/k/v (or gate/up) projection trains or carries an adapter.</summary>
    public bool AttnInAny, MlpInAny;

    /// <summary>Same saved-tensor behaviour (so one computation serves a run of identical layers).</summary>
    public bool SameAs(LayerProfile o) =>
        InputRequiresGrad == o.InputRequiresGrad && Norm1Trainable == o.Norm1Trainable && Norm2Trainable == o.Norm2Trainable
        && NormCount == o.NormCount && QkNormTrainable == o.QkNormTrainable && AttnOut == o.AttnOut && MlpDown == o.MlpDown
        && QLatentNormTrainable == o.QLatentNormTrainable && KvLatentNormTrainable == o.KvLatentNormTrainable && Sliding == o.Sliding && NoRope == o.NoRope
        && Router == o.Router && SharedExpertGate == o.SharedExpertGate && ExpertsTrainable == o.ExpertsTrainable && ExpertsLora == o.ExpertsLora
        && ExpertDownTrainable == o.ExpertDownTrainable && ExpertDownLora == o.ExpertDownLora && AnyTrainable == o.AnyTrainable
        && ExpertStackLoraElements == o.ExpertStackLoraElements
        && AttnIn.SequenceEqual(o.AttnIn) && MlpIn.SequenceEqual(o.MlpIn);

    /// <summary>Something in the layer records tensors for backward.</summary>
    public bool Active => InputRequiresGrad || AnyTrainable;

    /// <summary>This layer as it runs when its input needs a gradient (image features from a training vision tower).</summary>
    public LayerProfile WithInputGrad()
    {
        var copy = (LayerProfile)MemberwiseClone();
        copy.InputRequiresGrad = true;
        return copy;
    }
}

/// <summary>
/// The trainability map of a model under a <see cref="TrainableSelection"/>, reduced to what the ledger needs. Building it
/// walks every tensor once; plans that vary only batch or sequence reuse it (the fit search relies on that).
/// </summary>
public sealed class ModelProfile
{
    internal ModelProfile(TrainableSelection selection, bool detachedBlocks = false)
    {
        Selection = selection;
        DetachedBlocks = detachedBlocks;
        var arch = selection.Architecture;
        var facts = ArchitectureFacts.Of(arch);
        var tensors = arch.Tensors;
        Layers = new LayerProfile[arch.NumLayers];
        for (int i = 0; i < Layers.Length; i++) Layers[i] = new LayerProfile();
        var normModules = new string?[arch.NumLayers];
        // Frozen linear elements per layer (last slot: outside the layers, i.e. the head).
        var frozenLinearByLayer = new long[arch.NumLayers + 1];
        // The stored bytes of each linear a quantized checkpoint converts, by its weight's name.
        var checkpointBytes = arch.Quantization?.Converted(arch).ToDictionary(c => c.Linear.Module + ".weight", c => c.Bytes, StringComparer.Ordinal);

        for (int ti = 0; ti < tensors.Count; ti++)
        {
            var t = tensors[ti];
            bool trainable = selection.IsTrainableAt(ti);
            bool lora = selection.IsAdaptedAt(ti), stackLora = selection.IsStackAdaptedAt(ti);
            bool linear = facts.IsLinear[ti];
            // bitsandbytes / torchao replace nn.Linear modules: transformers 5's stacked experts stay 16-bit
            // (bitsandbytes issue 1849). A vision tower's linears are replaced too: transformers' get_keys_to_not_convert
            // spares only tied weights, the last parameter's module and the output embeddings (utils/quantization_config
            // and integrations/bitsandbytes.py, transformers 5).
            bool quantizable = facts.IsLinearModule[ti] && t.Role != TensorRole.LmHead;
            long elements = facts.Elements[ti];
            if (t.VisionLinear) VisionQuantizable += elements;

            // Storage classes of the base weights (see TrainingLedger for the bytes).
            if (quantizable) QuantizableElements += elements;
            if (t.IsExpertStackWeight) ExpertStackElements += elements;
            if (trainable)
            {
                TrainableBase += elements;
                _stepped = _stepped.With(elements, t.Shape.Length == 2 ? t.Shape[0] + t.Shape[1] : elements);
            }
            else if (quantizable) FrozenQuantizable += elements;
            else FrozenOther += elements;
            if (linear)
            {
                if (trainable) TrainableLinear += elements; else FrozenLinear += elements;
                if (!trainable) frozenLinearByLayer[t.Layer is int fl && fl >= 0 && fl < arch.NumLayers ? fl : arch.NumLayers] += elements;
                LargestLinear = Math.Max(LargestLinear, elements);
                if (quantizable) LargestQuantizableLinear = Math.Max(LargestQuantizableLinear, elements);
            }

            if (t.Layer is not int li || li < 0 || li >= Layers.Length)
            {
                switch (t.Role)
                {
                    case TensorRole.TokenEmbedding:
                        EmbeddingTrainable |= trainable;
                        if (arch.TiedEmbeddings)
                        {
                            // The head reuses the embedding matrix in a matmul (so AMP casts it) without a tensor of its own.
                            HeadTrainable |= trainable; HeadLora |= lora;
                            if (trainable) TrainableLinear += elements; else FrozenLinear += elements;
                        }
                        break;
                    case TensorRole.PositionEmbedding: EmbeddingTrainable |= trainable; break;
                    case TensorRole.LmHead: HeadTrainable |= trainable; HeadLora |= lora; break;
                    case TensorRole.Norm: FinalNormTrainable |= trainable; break;
                    case TensorRole.Vision: VisionFrozen += elements; break;
                }
                continue;
            }
            var L = Layers[li];
            L.AnyTrainable |= trainable || lora || stackLora;
            var use = linear ? new LinearUse(t.InFeatures, t.OutFeatures, trainable, lora,
                checkpointBytes is not null && checkpointBytes.TryGetValue(t.Name, out long stored) ? stored : 0) : default;
            switch (t.Role)
            {
                case TensorRole.Norm:
                    string module = facts.Modules[ti];
                    // q/k norms are told apart by name: Qwen3's are head_dim wide, OLMo 2's span the whole q or k projection.
                    if (arch.QkNorm && (module.EndsWith(".q_norm", StringComparison.Ordinal) || module.EndsWith(".k_norm", StringComparison.Ordinal)))
                    { L.QkNormTrainable |= trainable; break; }
                    // MLA's latent norms sit inside the attention, between its a and b projections.
                    if (arch.Mla is not null && module.EndsWith(".q_a_layernorm", StringComparison.Ordinal)) { L.QLatentNormTrainable |= trainable; break; }
                    if (arch.Mla is not null && module.EndsWith(".kv_a_layernorm", StringComparison.Ordinal)) { L.KvLatentNormTrainable |= trainable; break; }
                    if (normModules[li] is null) normModules[li] = module;
                    bool first = normModules[li] == module;
                    if (!first) L.NormCount = 2; else if (L.NormCount == 0) L.NormCount = 1;
                    if (first) L.Norm1Trainable |= trainable; else L.Norm2Trainable |= trainable;
                    break;
                case TensorRole.AttnQ or TensorRole.AttnK or TensorRole.AttnV or TensorRole.AttnQkv:
                    if (linear) { L.AttnIn.Add(use); L.AttnInAny |= trainable || lora; }
                    break;
                case TensorRole.AttnOut:
                    if (linear) L.AttnOut = use;
                    break;
                case TensorRole.Router:
                    // The first router-role linear is the expert router; qwen2_moe's later shared_expert_gate is [1, hidden].
                    if (linear && L.Router is null) L.Router = use;
                    else if (linear) L.SharedExpertGate = use;
                    break;
                case TensorRole.MlpGate or TensorRole.MlpUp or TensorRole.MlpGateUp:
                    if (lora && t.IsExpertStackWeight) { L.ExpertStackLoraElements += elements; LargestAdaptedExpertStack = Math.Max(LargestAdaptedExpertStack, elements); }
                    // A per-expert linear that transformers 5 stacks and target_parameters adapts: part of the layer's stack.
                    if (stackLora) { L.ExpertStackLoraElements += elements; L.ExpertsLora = true; }
                    if (t.IsExpert) { L.ExpertsTrainable |= trainable; L.ExpertsLora |= lora; }
                    else if (linear) { L.MlpIn.Add(use); L.MlpInAny |= trainable || lora; }
                    break;
                case TensorRole.MlpDown:
                    if (lora && t.IsExpertStackWeight) { L.ExpertStackLoraElements += elements; LargestAdaptedExpertStack = Math.Max(LargestAdaptedExpertStack, elements); }
                    if (stackLora) { L.ExpertStackLoraElements += elements; L.ExpertDownLora = true; }
                    if (t.IsExpert) { L.ExpertDownTrainable |= trainable; L.ExpertDownLora |= lora; }
                    else if (linear) L.MlpDown = use;
                    break;
            }
        }
        bool upstream = EmbeddingTrainable;
        for (int li = 0; li < Layers.Length; li++)
        {
            var L = Layers[li];
            L.Sliding = arch.IsSlidingLayer(li);
            L.NoRope = arch.RopeLayers is { } rope && !rope[li];
            L.InputRequiresGrad = upstream;
            upstream |= L.AnyTrainable;
            // DFA: every block hands the next one a detached output, so no block input (nor the final norm's) needs a gradient.
            if (detachedBlocks) upstream = false;
            if (L.InputRequiresGrad || L.AnyTrainable) FrozenLinearInGraph += frozenLinearByLayer[li];
        }
        HeadInputRequiresGrad = upstream;
        if (HeadInputRequiresGrad) FrozenLinearInGraph += frozenLinearByLayer[^1];
        if (arch.TiedEmbeddings && !HeadTrainable && HeadInputRequiresGrad) FrozenLinearInGraph += HeadElementsTied(arch, facts);
        foreach (var stack in selection.StackedExpertGroups())
        {
            LargestAdaptedExpertStack = Math.Max(LargestAdaptedExpertStack, stack.Elements);
            long rank = (long)selection.Lora!.Rank * stack.Experts;
            // ParamWrapper's factors: A [r·E, rows], B [columns, r·E].
            foreach (long other in (ReadOnlySpan<long>)[stack.Rows, stack.Columns])
            {
                _stepped = _stepped.With(rank * other, rank + other);
            }
        }
        if (selection.Lora is { } loraConfig)
        {
            var vision = new OptimizerTensors();
            for (int ti = 0; ti < tensors.Count; ti++)
            {
                if (!selection.IsAdaptedAt(ti)) continue;
                // A [r, in] and B [out, r]
                foreach (long other in (ReadOnlySpan<long>)[tensors[ti].Shape[1], tensors[ti].Shape[0]])
                {
                    long elements = loraConfig.Rank * other;
                    // A vision tower's adapters get no gradient in a text step: backprop steps them never, ES does.
                    if (tensors[ti].VisionLinear) { vision = vision.With(elements, loraConfig.Rank + other); continue; }
                    _stepped = _stepped.With(elements, loraConfig.Rank + other);
                }
            }
            VisionAdapters = vision;
        }
        HeadElements = (long)arch.VocabSize * arch.HiddenSize;

        var groups = new List<(LayerProfile, int)>();
        foreach (var L in Layers)
        {
            if (groups.Count > 0 && groups[^1].Item1.SameAs(L)) groups[^1] = (groups[^1].Item1, groups[^1].Item2 + 1);
            else groups.Add((L, 1));
        }
        LayerGroups = groups.ToArray();
    }

    /// <summary>Runs of consecutive layers that save the same tensors: (representative, count).</summary>
    internal (LayerProfile Layer, int Count)[] LayerGroups { get; }

    public static ModelProfile Create(TrainableSelection selection) => new(selection);

    /// <summary>Blocks see detached inputs (DFA): each keeps its own graph, none links to the one before.</summary>
    public bool DetachedBlocks { get; }

    private ModelProfile? detached;

    /// <summary>The same selection with detached blocks (built once, then reused by the fit search).</summary>
    public ModelProfile ForDetachedBlocks() => DetachedBlocks ? this : detached ??= new ModelProfile(Selection, detachedBlocks: true);

    private static long HeadElementsTied(ModelArchitecture arch, ArchitectureFacts facts)
    {
        for (int i = 0; i < arch.Tensors.Count; i++)
            if (arch.Tensors[i].Role == TensorRole.TokenEmbedding) return facts.Elements[i];
        return 0;
    }

    public TrainableSelection Selection { get; }
    public ModelArchitecture Architecture => Selection.Architecture;
    internal LayerProfile[] Layers { get; }
    internal bool EmbeddingTrainable, HeadTrainable, HeadLora, FinalNormTrainable, HeadInputRequiresGrad;

    /// <summary>Trainable base elements.</summary>
    public long TrainableBase { get; }
    /// <summary>Frozen linear weights other than the head: the part QLoRA / int8 / int4 quantize.</summary>
    public long FrozenQuantizable { get; }
    /// <summary>Frozen embeddings, norms, biases and head: kept in 16 bits even when the linears are quantized.</summary>
    public long FrozenOther { get; }
    /// <summary>All linear weights other than the head, trainable or not (what a quantized inference model stores in low bits).</summary>
    public long QuantizableElements { get; }

    /// <summary>Elements of stacked expert weight matrices (gpt_oss): what an MXFP4 checkpoint stores in 4.25 bits while
    /// every nn.Linear, the embeddings and the head stay 16-bit (its quantization_config's modules_to_not_convert).</summary>
    public long ExpertStackElements { get; }
    /// <summary>Elements of the largest stacked expert weight adapted through PEFT's target_parameters (0: none).</summary>
    public long LargestAdaptedExpertStack { get; }
    /// <summary>Elements of linear weights used in matmuls (head included, tied or not), by trainability: what AMP casts.</summary>
    public long TrainableLinear { get; }
    public long FrozenLinear { get; }
    /// <summary>
    /// Frozen linear elements whose layer is part of the autograd graph (its input or a parameter needs a gradient): their
    /// 16-bit autocast copies are saved for backward. Frozen layers before the first trainable one run without a graph,
    /// so their casts die at once.
    /// </summary>
    public long FrozenLinearInGraph { get; }
    public long LargestLinear { get; }
    public long LargestQuantizableLinear { get; }
    // The tensors a backprop step gives a gradient and optimizer state (trainable base, adapted expert stacks, adapters
    // other than a vision tower's), as the optimizers size their states.
    private readonly OptimizerTensors _stepped;

    public long LargestTrainable => _stepped.Largest;
    /// <summary>Trainable elements in tensors under 4,096 elements (bitsandbytes keeps their state in 32 bits).</summary>
    public long SmallTrainable => _stepped.Small;
    /// <summary>bitsandbytes' 8-bit optimizer blocks over the other trainable tensors: ⌈n / 256⌉ each, one fp32 absmax per
    /// block and state (blocks of 256 since bitsandbytes 0.44, PR #1365; 2,048 before).</summary>
    public long EightBitStateBlocks => _stepped.Blocks;
    /// <summary>Adafactor's factored second-moment size: rows + columns per matrix, every element of a vector.</summary>
    public long FactoredElements => _stepped.Factored;

    /// <summary>The optimizer-state sizes of the vision tower's LoRA adapters, which the figures above leave out: a backprop
    /// text step gives them no gradient, so AdamW creates no state for them; ES perturbs and steps every parameter that
    /// requires grad, these included.</summary>
    public OptimizerTensors VisionAdapters { get; }

    /// <summary>bitsandbytes: tensors under this many elements keep 32-bit optimizer state.</summary>
    public const long EightBitMinSize = 4096;
    /// <summary>bitsandbytes' blockwise 8-bit optimizer block (0.44 and later).</summary>
    public const long EightBitBlock = 256;
    public long HeadElements { get; }
    /// <summary>Image-encoder and projector elements (Gemma 3's SigLIP tower): a text step runs nothing through them, so they
    /// are never trained (see <see cref="TrainableSelection"/>). Their nn.Linear weights (<see cref="VisionQuantizable"/>)
    /// count in <see cref="FrozenQuantizable"/>, the rest in <see cref="FrozenOther"/>.</summary>
    public long VisionFrozen { get; }
    /// <summary>The part of <see cref="VisionFrozen"/> in nn.Linear weights: what bitsandbytes quantizes with the text
    /// model's linears (in <see cref="FrozenQuantizable"/>, not <see cref="FrozenOther"/>).</summary>
    public long VisionQuantizable { get; }

    private StoredWeights? frozenStored;

    /// <summary>The linears a GPTQ/AWQ/bitsandbytes checkpoint stores quantized that stay frozen, in their stored bytes (what
    /// LoRA trains adapters over); null when the architecture has no such checkpoint.</summary>
    public StoredWeights? FrozenCheckpointWeights
    {
        get
        {
            if (Architecture.Quantization is not { } q) return null;
            if (frozenStored is null)
            {
                var trainable = Selection.TrainableBaseTensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
                frozenStored = q.Stored(Architecture, l => !trainable.Contains(l.Module + ".weight"));
            }
            return frozenStored;
        }
    }
}

/// <summary>Optimizer-state sizes over a group of trainable tensors: the largest one, elements in tensors under
/// bitsandbytes' <c>min_8bit_size</c>, 8-bit state blocks over the rest, and Adafactor's factored elements.</summary>
public readonly record struct OptimizerTensors(long Largest, long Small, long Blocks, long Factored)
{
    /// <summary>This group with one more tensor of <paramref name="elements"/> (<paramref name="factored"/> for Adafactor),
    /// sized as bitsandbytes' 8-bit optimizers size its state (<c>Optimizer8bit.init_state</c>: under <c>min_8bit_size</c> =
    /// 4,096 elements, two fp32 states; else one absmax per block of 256).</summary>
    public OptimizerTensors With(long elements, long factored) => elements < ModelProfile.EightBitMinSize
        ? this with { Largest = Math.Max(Largest, elements), Small = Small + elements, Factored = Factored + factored }
        : this with { Largest = Math.Max(Largest, elements), Blocks = Blocks + (elements + ModelProfile.EightBitBlock - 1) / ModelProfile.EightBitBlock, Factored = Factored + factored };
}
