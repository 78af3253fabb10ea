namespace Afinado.Planner.Architecture;

/// <summary>What a parameter tensor does; LoRA targets, freezing and the activation ledger key off this.</summary>
public enum TensorRole
{
    TokenEmbedding,
    PositionEmbedding,
    /// <summary>Norm weight or bias (RMSNorm / LayerNorm), including q/k norms.</summary>
    Norm,
    AttnQ,
    AttnK,
    AttnV,
    /// <summary>Fused q,k,v projection (GPT-2 c_attn, NeoX/Falcon query_key_value, Phi-3 qkv_proj).</summary>
    AttnQkv,
    /// <summary>Attention output projection (o_proj, c_proj, dense).</summary>
    AttnOut,
    MlpGate,
    MlpUp,
    /// <summary>Fused gate and up (Phi-3 gate_up_proj).</summary>
    MlpGateUp,
    MlpDown,
    /// <summary>MoE router (Mixtral block_sparse_moe.gate, qwen MoE mlp.gate) or qwen2_moe's scalar mlp.shared_expert_gate.</summary>
    Router,
    /// <summary>Learned attention sinks, one logit per query head (gpt_oss <c>self_attn.sinks</c>).</summary>
    AttnSink,
    /// <summary>A tensor of a checkpoint read generically whose role its name does not tell: counted in the weights,
    /// given no activations, never a LoRA target.</summary>
    Other,
    LmHead,
    /// <summary>
    /// A tensor of an image encoder or its projector into the text model (Gemma 3's SigLIP tower): its weights are held in
    /// memory, but text finetuning runs no image through it, so it adds no activations and gets no gradient. Its nn.Linear
    /// weights (<see cref="ParameterTensor.VisionLinear"/>) still carry LoRA adapters when the targets reach them.
    /// </summary>
    Vision,
}

/// <summary>
/// One parameter tensor as it is named in a Hugging Face checkpoint.
/// For a linear layer the shape is [out, in] (PyTorch layout), except GPT-2's <c>Conv1D</c> modules which store
/// [in, out] (<see cref="Conv1D"/> is then true); bias tensors have one dimension. Shapes are always recorded exactly
/// as the checkpoint stores them, so <c>afinado inspect</c> can compare them; use <see cref="InFeatures"/> and
/// <see cref="OutFeatures"/> for the math.
/// </summary>
public sealed record ParameterTensor(string Name, long[] Shape, TensorRole Role, int? Layer = null, int? Expert = null)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => checked(a * b));
    public bool IsBias => Name.EndsWith(".bias", StringComparison.Ordinal);
    /// <summary>The module path without the trailing <c>.weight</c>/<c>.bias</c>, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string Module => Name[..Name.LastIndexOf('.')];
    /// <summary>A 2-D weight of a linear projection (what LoRA can adapt by module). A stack of expert weights is not one:
    /// PEFT reaches those only through <c>target_parameters</c>.</summary>
    public bool IsLinearWeight => !IsBias && StackedExperts == 0 && Shape.Length == 2
        && Role is not (TensorRole.TokenEmbedding or TensorRole.PositionEmbedding or TensorRole.Vision or TensorRole.AttnSink or TensorRole.Other or TensorRole.Norm);

    /// <summary>
    /// Experts stacked along the first dimension of one tensor (gpt_oss's <c>mlp.experts.gate_up_proj</c> [E, hidden, 2·I]
    /// and its bias [E, 2·I]); 0 for a tensor of one expert or none. Such a tensor is an nn.Parameter, not an nn.Linear:
    /// bitsandbytes does not quantize it, MXFP4 checkpoints do.
    /// </summary>
    public int StackedExperts { get; init; }

    /// <summary>
    /// The weight of an image encoder's or projector's nn.Linear ([out, in]). PEFT's all-linear adapts every nn.Linear but
    /// the output head (peft/tuners/tuners_utils.py <c>_maybe_include_all_linear_layers</c>), the vision tower's included, and
    /// a named target reaches it too. It is not a <see cref="IsLinearWeight"/>: a text step runs nothing through it.
    /// </summary>
    public bool VisionLinear { get; init; }

    /// <summary>The tensor belongs to routed experts: one expert's (<see cref="Expert"/>) or a stack of them.</summary>
    public bool IsExpert => Expert is not null || StackedExperts > 0;

    /// <summary>A stack of expert weight matrices [E, in, out] (not their biases).</summary>
    public bool IsExpertStackWeight => StackedExperts > 0 && Shape.Length == 3;

    /// <summary>
    /// True for transformers' <c>Conv1D</c> (GPT-2): the weight is stored [in, out] and applied as <c>x @ W</c>.
    /// A LoRA adapter on it must transpose its delta; a TorchSharp Linear loading it must transpose the weight.
    /// </summary>
    public bool Conv1D { get; init; }

    /// <summary>Input width of a linear weight (0 for anything else).</summary>
    public long InFeatures => !IsLinearWeight ? 0 : Conv1D ? Shape[0] : Shape[1];

    /// <summary>Output width of a linear weight (0 for anything else).</summary>
    public long OutFeatures => !IsLinearWeight ? 0 : Conv1D ? Shape[1] : Shape[0];
}

/// <summary>
/// One linear projection of the model (a weight and maybe its bias), with the widths LoRA and a model builder need.
/// <see cref="Module"/> is the Hugging Face module path (what <c>--lora-targets</c> / peft's <c>target_modules</c> match).
/// </summary>
public sealed record LinearLayer(string Module, long InFeatures, long OutFeatures, bool HasBias, bool Conv1D, TensorRole Role, int? Layer, int? Expert)
{
    /// <summary>The last segment of <see cref="Module"/>, e.g. <c>q_proj</c> or <c>c_attn</c>.</summary>
    public string ShortName => Module[(Module.LastIndexOf('.') + 1)..];
}
