using Afinado.Planner.Architecture;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Memory;

/// <summary>A linear projection inside a layer, as the activation ledger sees it.</summary>
internal readonly record struct LinearUse(long In, long Out, bool Trainable, bool Lora);

/// <summary>Per-layer facts the activation ledger needs, computed once per (architecture, selection).</summary>
internal sealed class LayerProfile
{
    public bool InputRequiresGrad;
    public bool Norm1Trainable, Norm2Trainable;
    public int NormCount;
    public bool QkNormTrainable;
    public readonly List<LinearUse> AttnIn = [];
    public LinearUse? AttnOut;
    public readonly List<LinearUse> MlpIn = [];
    public LinearUse? MlpDown;
    public LinearUse? Router;
    /// <summary>For MoE: one representative expert's linears (experts share shapes); trainability is the OR over experts.</summary>
    public bool ExpertsTrainable, ExpertsLora, ExpertDownTrainable, ExpertDownLora;

    /// <summary>Any parameter (or adapter) in the layer trains.</summary>
    public bool AnyTrainable;

    /// <summary>Something in the layer records tensors for backward.</summary>
    public bool Active => InputRequiresGrad || AnyTrainable;
}

/// <summary>
/// The trainability map of a model under a <see cref="TrainableSelection"/>, reduced to what the ledger needs. Building it
/// walks every tensor once; plans that vary only batch or sequence reuse it (the fit search relies on that).
/// </summary>
public sealed class ModelProfile
{
    internal ModelProfile(TrainableSelection selection)
    {
        Selection = selection;
        var arch = selection.Architecture;
        var adapted = selection.AdaptedLinears.Select(t => t.Name).ToHashSet();
        Layers = new LayerProfile[arch.NumLayers];
        for (int i = 0; i < Layers.Length; i++) Layers[i] = new LayerProfile();
        var normsSeen = new HashSet<string>[arch.NumLayers];
        for (int i = 0; i < normsSeen.Length; i++) normsSeen[i] = [];

        foreach (var t in arch.Tensors)
        {
            bool trainable = selection.IsTrainable(t);
            bool lora = adapted.Contains(t.Name);
            if (t.Layer is not int li || li < 0 || li >= Layers.Length)
            {
                switch (t.Role)
                {
                    case TensorRole.TokenEmbedding: EmbeddingTrainable |= trainable; if (arch.TiedEmbeddings) { HeadTrainable |= trainable; HeadLora |= lora; } break;
                    case TensorRole.PositionEmbedding: EmbeddingTrainable |= trainable; break;
                    case TensorRole.LmHead: HeadTrainable |= trainable; HeadLora |= lora; break;
                    case TensorRole.Norm: FinalNormTrainable |= trainable; break;
                }
                continue;
            }
            var L = Layers[li];
            L.AnyTrainable |= trainable || lora;
            var use = t.IsLinearWeight ? new LinearUse(t.Shape[1], t.Shape[0], trainable, lora) : default;
            switch (t.Role)
            {
                case TensorRole.Norm:
                    if (t.Shape.Length == 1 && t.Shape[0] == arch.HeadDim && arch.QkNorm) { L.QkNormTrainable |= trainable; break; }
                    if (normsSeen[li].Add(t.Module)) L.NormCount = normsSeen[li].Count;
                    if (normsSeen[li].Count <= 1) L.Norm1Trainable |= trainable; else L.Norm2Trainable |= trainable;
                    break;
                case TensorRole.AttnQ or TensorRole.AttnK or TensorRole.AttnV or TensorRole.AttnQkv:
                    if (t.IsLinearWeight) L.AttnIn.Add(use);
                    break;
                case TensorRole.AttnOut:
                    if (t.IsLinearWeight) L.AttnOut = use;
                    break;
                case TensorRole.Router:
                    if (t.IsLinearWeight) L.Router = use;
                    break;
                case TensorRole.MlpGate or TensorRole.MlpUp or TensorRole.MlpGateUp:
                    if (t.Expert is not null) { L.ExpertsTrainable |= trainable; L.ExpertsLora |= lora; }
                    else if (t.IsLinearWeight) L.MlpIn.Add(use);
                    break;
                case TensorRole.MlpDown:
                    if (t.Expert is not null) { L.ExpertDownTrainable |= trainable; L.ExpertDownLora |= lora; }
                    else if (t.IsLinearWeight) L.MlpDown = use;
                    break;
            }
        }
        bool upstream = EmbeddingTrainable;
        foreach (var L in Layers)
        {
            L.InputRequiresGrad = upstream;
            upstream |= L.AnyTrainable;
        }
        HeadInputRequiresGrad = upstream;

        // Storage classes of the base weights (see TrainingLedger for the bytes).
        foreach (var t in arch.Tensors)
        {
            bool trainable = selection.IsTrainable(t);
            if (t.IsLinearWeight && t.Role != TensorRole.LmHead) QuantizableElements += t.Elements;
            if (trainable) TrainableBase += t.Elements;
            else if (t.IsLinearWeight && t.Role != TensorRole.LmHead) FrozenQuantizable += t.Elements;
            else FrozenOther += t.Elements;
            if (t.IsLinearWeight && t.Role is not (TensorRole.TokenEmbedding or TensorRole.PositionEmbedding))
            {
                if (trainable) TrainableLinear += t.Elements; else FrozenLinear += t.Elements;
                LargestLinear = Math.Max(LargestLinear, t.Elements);
                if (t.Role != TensorRole.LmHead) LargestQuantizableLinear = Math.Max(LargestQuantizableLinear, t.Elements);
            }
            if (trainable) LargestTrainable = Math.Max(LargestTrainable, t.Elements);
        }
        if (arch.TiedEmbeddings)
        {
            // The head reuses the embedding matrix in a matmul (so AMP casts it) without a tensor of its own.
            long emb = arch.Tensors.First(t => t.Role == TensorRole.TokenEmbedding).Elements;
            if (selection.IsTrainable(arch.Tensors.First(t => t.Role == TensorRole.TokenEmbedding))) TrainableLinear += emb; else FrozenLinear += emb;
        }
        foreach (var a in selection.Adapters) LargestTrainable = Math.Max(LargestTrainable, a.Elements);
        foreach (var t in selection.TrainableBaseTensors)
            if (t.Elements < 4096) SmallTrainable += t.Elements;
        foreach (var a in selection.Adapters)
            if (a.Elements < 4096) SmallTrainable += a.Elements;
        foreach (var t in selection.TrainableBaseTensors)
            FactoredElements += t.Shape.Length == 2 ? t.Shape[0] + t.Shape[1] : t.Elements;
        foreach (var a in selection.Adapters) FactoredElements += a.Shape[0] + a.Shape[1];
        HeadElements = (long)arch.VocabSize * arch.HiddenSize;
    }

    public static ModelProfile Create(TrainableSelection selection) => new(selection);

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
    /// <summary>Elements of linear weights used in matmuls (head included, tied or not), by trainability: what AMP casts.</summary>
    public long TrainableLinear { get; }
    public long FrozenLinear { get; }
    public long LargestLinear { get; }
    public long LargestQuantizableLinear { get; }
    public long LargestTrainable { get; }
    /// <summary>Trainable elements in tensors under 4,096 elements (bitsandbytes keeps their state in 32 bits).</summary>
    public long SmallTrainable { get; }
    /// <summary>Adafactor's factored second-moment size: rows + columns per matrix, every element of a vector.</summary>
    public long FactoredElements { get; }
    public long HeadElements { get; }
}
