namespace Afinado.Planner.Architecture;

/// <summary>How the feed-forward block is built.</summary>
public enum MlpKind
{
    /// <summary>up → activation → down (GPT-2, GPT-NeoX, Falcon, phi-1.5/2, StarCoder): 2 linears.</summary>
    Plain,
    /// <summary>act(gate(x)) * up(x) → down (Llama SwiGLU, Gemma GeGLU, Phi-3 fused gate_up): 3 linears' worth of weights.</summary>
    Gated,
}

public enum NormKind { RmsNorm, LayerNorm }

public enum PositionKind { Rotary, Learned, Alibi }

/// <summary>
/// One description of a decoder-only transformer, read once from a Hugging Face <c>config.json</c> and shared by the
/// planner (parameter and memory ledgers) and the trainer (the TorchSharp model is built from it).
/// Every parameter tensor is listed by <see cref="Tensors"/> with its Hugging Face name, so counts are exact and
/// freeze / LoRA patterns match the names users know.
/// </summary>
public sealed record ModelArchitecture
{
    /// <summary>Hugging Face <c>model_type</c>, e.g. <c>llama</c>.</summary>
    public required string ModelType { get; init; }
    /// <summary>A display name (catalog id or folder), not part of the math.</summary>
    public string Name { get; init; } = "";

    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads: equal to <see cref="NumHeads"/> for MHA, fewer for GQA, 1 for MQA.</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Per-head width; usually hidden/heads but not always (Gemma 7B: 256 with hidden 3072 and 16 heads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>Feed-forward width (for a gated MLP the width of gate and of up, each).</summary>
    public required int IntermediateSize { get; init; }

    public MlpKind Mlp { get; init; } = MlpKind.Gated;
    /// <summary>Hugging Face activation name (<c>silu</c>, <c>gelu_new</c>, <c>gelu_pytorch_tanh</c>, ...).</summary>
    public string Activation { get; init; } = "silu";
    public NormKind Norm { get; init; } = NormKind.RmsNorm;
    public double NormEpsilon { get; init; } = 1e-5;
    public PositionKind Positions { get; init; } = PositionKind.Rotary;
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>Fraction of the head width that is rotated (phi-2: 0.4, NeoX: rotary_pct). 1 for Llama.</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;
    public int MaxPositionEmbeddings { get; init; } = 2048;

    public bool TiedEmbeddings { get; init; }
    public bool QkvBias { get; init; }
    public bool AttentionOutBias { get; init; }
    public bool MlpBias { get; init; }
    public bool LmHeadBias { get; init; }
    /// <summary>Per-head RMSNorm on q and k (Qwen3).</summary>
    public bool QkNorm { get; init; }

    /// <summary>Mixture of experts: number of experts per layer (0 = dense) and experts each token is routed to.</summary>
    public int NumExperts { get; init; }
    public int ExpertsPerToken { get; init; }

    /// <summary>Sliding-window attention span in tokens, when the config sets one (Mistral v0.1: 4096).</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>The parameter tensors, with Hugging Face names and shapes, in checkpoint order.</summary>
    public required IReadOnlyList<ParameterTensor> Tensors { get; init; }

    public bool IsMoE => NumExperts > 0;
    public int QueryWidth => NumHeads * HeadDim;
    public int KvWidth => NumKvHeads * HeadDim;

    /// <summary>Exact number of parameters (tied embeddings counted once).</summary>
    public long ParameterCount => Tensors.Sum(t => t.Elements);

    /// <summary>Parameters one token touches: for MoE only <see cref="ExpertsPerToken"/> experts per layer.</summary>
    public long ActiveParameterCount =>
        IsMoE
            ? Tensors.Where(t => t.Expert is null || t.Expert < ExpertsPerToken).Sum(t => t.Elements)
            : ParameterCount;

    /// <summary>K and V bytes one token adds to the cache: 2 · layers · kv_heads · head_dim · bytes (kipply, GQA-aware).</summary>
    public long KvBytesPerToken(double bytesPerElement) =>
        (long)Math.Round(2.0 * NumLayers * NumKvHeads * HeadDim * bytesPerElement);
}
