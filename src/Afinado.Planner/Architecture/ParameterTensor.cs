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
    /// <summary>MoE router (Mixtral block_sparse_moe.gate).</summary>
    Router,
    LmHead,
}

/// <summary>
/// One parameter tensor as it is named in a Hugging Face checkpoint.
/// For a linear layer the shape is [out, in] (PyTorch layout); bias tensors have one dimension.
/// </summary>
public sealed record ParameterTensor(string Name, long[] Shape, TensorRole Role, int? Layer = null, int? Expert = null)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => checked(a * b));
    public bool IsBias => Name.EndsWith(".bias", StringComparison.Ordinal);
    /// <summary>The module path without the trailing <c>.weight</c>/<c>.bias</c>, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string Module => Name[..Name.LastIndexOf('.')];
    /// <summary>A 2-D weight of a linear projection (what LoRA can adapt).</summary>
    public bool IsLinearWeight => !IsBias && Shape.Length == 2 && Role is not (TensorRole.TokenEmbedding or TensorRole.PositionEmbedding);
}
