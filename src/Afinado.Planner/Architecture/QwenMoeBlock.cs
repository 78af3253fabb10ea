namespace Afinado.Planner.Architecture;

/// <summary>
/// The feed-forward layout of transformers' <c>qwen2_moe</c> and <c>qwen3_moe</c> decoder layers
/// (models/qwen2_moe/modeling_qwen2_moe.py and models/qwen3_moe/modeling_qwen3_moe.py, with their configuration_*.py
/// defaults). A layer is sparse when it is not in <c>mlp_only_layers</c>, <c>num_experts</c> &gt; 0 and
/// <c>(i + 1) % decoder_sparse_step == 0</c>; otherwise it has a dense MLP of <c>intermediate_size</c>.
/// A sparse block holds a router <c>mlp.gate</c> [num_experts, hidden] without bias, <c>num_experts</c> gated MLPs of
/// <c>moe_intermediate_size</c> and, for qwen2_moe only, a shared expert (gated MLP of
/// <c>shared_expert_intermediate_size</c>) scaled by <c>sigmoid(mlp.shared_expert_gate(x))</c> with a [1, hidden] weight.
/// <c>norm_topk_prob</c> only rescales routing weights, so it changes no shape and is not read here.
/// </summary>
internal sealed record QwenMoeBlock(int Experts, int PerToken, int ExpertWidth, int? SharedWidth, int SparseStep, IReadOnlySet<int> MlpOnlyLayers)
{
    public static QwenMoeBlock Read(ConfigFields c, string modelType, int layers)
    {
        bool qwen2 = modelType == "qwen2_moe";
        // Qwen3MoeConfig maps num_experts to num_local_experts (attribute_map), so configs saved by transformers 5 carry the latter.
        string expertsKey = !qwen2 && !c.Has("num_experts") && c.Has("num_local_experts") ? "num_local_experts" : "num_experts";
        int experts = c.Bounded(expertsKey, qwen2 ? 60 : 128, 0, ArchitectureLimits.MaxExperts);
        int perToken = c.Bounded("num_experts_per_tok", qwen2 ? 4 : 8, 1, ArchitectureLimits.MaxExperts);
        if (experts > 0 && perToken > experts)
            throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds {expertsKey} {experts}", "A token cannot be routed to more experts than exist.");
        int expertWidth = c.OptionalDim("moe_intermediate_size") ?? (qwen2 ? 1408 : 768);
        int? sharedWidth = qwen2 ? c.OptionalDim("shared_expert_intermediate_size") ?? 5632 : null;
        int step = c.Bounded("decoder_sparse_step", 1, 1, ArchitectureLimits.MaxLayers);
        var block = new QwenMoeBlock(experts, perToken, expertWidth, sharedWidth, step, c.LayerIndices("mlp_only_layers", layers));
        if ((long)block.SparseLayers(layers) * experts > ArchitectureLimits.MaxExpertMlps)
            throw c.Invalid(expertsKey, $"{experts} experts × {block.SparseLayers(layers)} sparse layers is beyond any real model", "Check config.json for a typo.");
        return block;
    }

    /// <summary>The condition in <c>Qwen2MoeDecoderLayer.__init__</c> / <c>Qwen3MoeDecoderLayer.__init__</c>.</summary>
    public bool IsSparse(int layer) => !MlpOnlyLayers.Contains(layer) && Experts > 0 && (layer + 1) % SparseStep == 0;

    public int SparseLayers(int layers) => Enumerable.Range(0, layers).Count(IsSparse);

    /// <summary>Widest MLP that is not routed: a dense layer's <paramref name="denseWidth"/> or the shared expert's; 0 if none.</summary>
    public int UnroutedWidth(int layers, int denseWidth) =>
        Enumerable.Range(0, layers).Select(i => IsSparse(i) ? SharedWidth ?? 0 : denseWidth).DefaultIfEmpty(0).Max();

    /// <summary>
    /// Adds layer <paramref name="layer"/>'s sparse block under checkpoint names (<c>mlp.experts.{e}.gate_proj</c>...).
    /// Routed experts carry their index so <see cref="ModelArchitecture.ActiveParameterCount"/> counts only
    /// <c>num_experts_per_tok</c> of them; the router and the shared expert carry none because every token uses them.
    /// </summary>
    public void Add(TensorList t, string prefix, int hidden, int layer)
    {
        string p = prefix + "mlp.";
        t.Linear(p + "gate", Experts, hidden, false, TensorRole.Router, layer);
        for (int e = 0; e < Experts; e++)
        {
            string x = $"{p}experts.{e}.";
            t.Linear(x + "gate_proj", ExpertWidth, hidden, false, TensorRole.MlpGate, layer, e);
            t.Linear(x + "up_proj", ExpertWidth, hidden, false, TensorRole.MlpUp, layer, e);
            t.Linear(x + "down_proj", hidden, ExpertWidth, false, TensorRole.MlpDown, layer, e);
        }
        if (SharedWidth is not int shared) return;
        t.Linear(p + "shared_expert.gate_proj", shared, hidden, false, TensorRole.MlpGate, layer);
        t.Linear(p + "shared_expert.up_proj", shared, hidden, false, TensorRole.MlpUp, layer);
        t.Linear(p + "shared_expert.down_proj", hidden, shared, false, TensorRole.MlpDown, layer);
        // A scalar gate per token: a router-like projection (replicated under tensor parallelism, never routed).
        t.Linear(p + "shared_expert_gate", 1, hidden, false, TensorRole.Router, layer);
    }
}
