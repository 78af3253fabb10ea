using System.Text.Json;
using System.Text.RegularExpressions;
using Afinado.Planner.Safetensors;

namespace Afinado.Planner.Architecture;

/// <summary>
/// A decoder whose <c>model_type</c> has no family here, planned from its checkpoint's safetensors headers (every tensor's
/// name, dtype and shape, as hf-mem reads them) and the config fields every decoder shares. The weights are exact (the
/// headers' bytes); each tensor's role (embedding, q/k/v/o, gate/up/down, router, experts, norm) is inferred from its name,
/// so the activation model is the generic decoder's and approximate; config keys this path does not read are named in
/// <see cref="ModelArchitecture.Warnings"/>.
/// </summary>
internal static partial class GenericDecoder
{
    public static ModelArchitecture Build(ConfigFields c, string modelType, SafetensorsCheckpoint checkpoint)
    {
        var stored = checkpoint.Tensors.ToList();
        RecurrentLayers.Refuse(c, stored.Select(t => t.Name));
        var tensors = new List<ParameterTensor>(stored.Count);
        foreach (var s in stored) tensors.Add(Classify(s.Name, s.Shape));

        var embedding = tensors.FirstOrDefault(t => t.Role == TensorRole.TokenEmbedding);
        int heads = c.Dim("num_attention_heads", "n_head", "num_heads");
        int hidden = c.OptionalDim("hidden_size", "d_model", "n_embd")
            ?? (embedding is { Shape.Length: 2 } ? checked((int)embedding.Shape[1]) : throw c.Invalid("hidden_size", "is missing and no token embedding was recognised in the checkpoint", "Add hidden_size to config.json."));
        int layers = c.OptionalDim("num_hidden_layers", "n_layer", "num_layers")
            ?? (tensors.Max(t => t.Layer) is int last ? last + 1 : throw c.Invalid("num_hidden_layers", "is missing and no tensor names a layer", "Add num_hidden_layers to config.json."));
        int vocab = c.OptionalDim("vocab_size") ?? (embedding is not null ? checked((int)embedding.Shape[0]) : throw c.Invalid("vocab_size", "is missing and no token embedding was recognised", "Add vocab_size to config.json."));
        int kvHeads = c.OptionalDim("num_key_value_heads", "n_head_kv", "num_kv_heads") ?? heads;
        int headDim = c.OptionalDim("head_dim") ?? LlamaFamily.DivideHidden(c, hidden, heads);
        LlamaFamily.CheckGroups(c, heads, kvHeads);
        var firstUp = tensors.FirstOrDefault(t => t.IsLinearWeight && !t.IsExpert && t.Role is TensorRole.MlpUp or TensorRole.MlpGate);
        int inter = c.OptionalDim("intermediate_size", "ffn_hidden_size", "n_inner") ?? (firstUp is not null ? checked((int)firstUp.OutFeatures) : 4 * hidden);

        // Experts: one module per expert (experts.{j}.…) or stacked in one parameter [E, …].
        int experts = Math.Max(tensors.Where(t => t.Expert is not null).Select(t => t.Expert!.Value + 1).DefaultIfEmpty(0).Max(),
            tensors.Select(t => t.StackedExperts).DefaultIfEmpty(0).Max());
        int perToken = 0;
        if (experts > 0)
        {
            perToken = c.Dim("num_experts_per_tok", "moe_top_k", "top_k", "experts_per_token");
            if (perToken > experts)
                throw c.Invalid("num_experts_per_tok", $"{perToken} exceeds the {experts} experts the checkpoint holds per layer", "A token cannot be routed to more experts than exist.");
        }
        var expertUp = tensors.FirstOrDefault(t => t.Expert is not null && t.IsLinearWeight && t.Role is TensorRole.MlpUp or TensorRole.MlpGate);

        bool gated = tensors.Any(t => t.Role is TensorRole.MlpGate or TensorRole.MlpGateUp);
        bool layerNorm = tensors.Any(t => t.Role == TensorRole.Norm && t.IsBias);
        bool learned = tensors.Any(t => t.Role == TensorRole.PositionEmbedding);

        return new ModelArchitecture
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            IntermediateSize = inter,
            Mlp = gated ? MlpKind.Gated : MlpKind.Plain,
            Activation = c.OptionalString("hidden_act") ?? (gated ? "silu" : "gelu"),
            Norm = layerNorm ? NormKind.LayerNorm : NormKind.RmsNorm,
            NormBias = layerNorm,
            Positions = learned ? PositionKind.Learned : PositionKind.Rotary,
            MaxPositionEmbeddings = c.OptionalDim("max_position_embeddings", "n_positions", "max_sequence_length") ?? 4096,
            TiedEmbeddings = !tensors.Any(t => t.Role == TensorRole.LmHead),
            NumExperts = experts,
            ExpertsPerToken = perToken,
            ExpertIntermediateSize = experts > 0 ? c.OptionalDim("moe_intermediate_size") ?? (expertUp is not null ? checked((int)expertUp.OutFeatures) : null) : null,
            Support = ModelSupport.Generic,
            StoredWeightBytes = checkpoint.TotalBytes,
            StoredDtypes = string.Join(", ", checkpoint.ByDtype.Select(d => $"{d.Dtype} {d.Tensors}")),
            Warnings = UnreadKeys(c),
            Tensors = tensors,
        };
    }

    /// <summary>A tensor's role from its name: its layer (<c>layers.N</c>, <c>h.N</c>, <c>blocks.N</c>), expert
    /// (<c>experts.N</c>), the block it sits in (attention or MLP) and its module's own name.</summary>
    internal static ParameterTensor Classify(string name, long[] shape)
    {
        var lower = name.ToLowerInvariant();
        var layerMatch = LayerIndex().Match(lower);
        int? layer = layerMatch.Success && int.TryParse(layerMatch.Groups[1].Value, out int l) ? l : null;
        var expertMatch = ExpertIndex().Match(lower);
        int? expert = expertMatch.Success && int.TryParse(expertMatch.Groups[1].Value, out int x) ? x : null;
        string[] parts = lower.Split('.');
        string leaf = parts.Length >= 2 ? parts[^2] : parts[0];
        string last = parts[^1];
        bool inExperts = lower.Contains(".experts.", StringComparison.Ordinal);
        int stacked = inExperts && expert is null && shape.Length >= 2 ? checked((int)shape[0]) : 0;

        TensorRole role;
        if (layer is null)
            role = lower.Contains("embed_tokens", StringComparison.Ordinal) || lower.EndsWith("wte.weight", StringComparison.Ordinal)
                    || lower.Contains("word_embeddings", StringComparison.Ordinal) || lower.Contains("tok_embeddings", StringComparison.Ordinal)
                    || lower.Contains("embed_in", StringComparison.Ordinal) ? TensorRole.TokenEmbedding
                : lower.EndsWith("wpe.weight", StringComparison.Ordinal) || lower.Contains("embed_positions", StringComparison.Ordinal)
                    || lower.Contains("position_embeddings", StringComparison.Ordinal) ? TensorRole.PositionEmbedding
                : lower.StartsWith("lm_head", StringComparison.Ordinal) || lower.StartsWith("embed_out", StringComparison.Ordinal) || lower == "output.weight" ? TensorRole.LmHead
                : IsNorm(lower) ? TensorRole.Norm
                : TensorRole.Other;
        else if (IsNorm(leaf) || IsNorm(last))
            role = TensorRole.Norm;
        else if (leaf == "router" || (leaf == "gate" && !inExperts && (lower.Contains("moe", StringComparison.Ordinal) || lower.Contains(".mlp.gate.", StringComparison.Ordinal))))
            role = TensorRole.Router;
        else if (lower.Contains("attn", StringComparison.Ordinal) || lower.Contains("attention", StringComparison.Ordinal))
            role = leaf switch
            {
                "q_proj" or "query" or "wq" => TensorRole.AttnQ,
                "k_proj" or "key" or "wk" => TensorRole.AttnK,
                "v_proj" or "value" or "wv" => TensorRole.AttnV,
                "qkv_proj" or "query_key_value" or "c_attn" or "wqkv" or "qkv" => TensorRole.AttnQkv,
                "o_proj" or "out_proj" or "dense" or "c_proj" or "wo" or "o" => TensorRole.AttnOut,
                _ => TensorRole.Other,
            };
        else if (inExperts || lower.Contains("mlp", StringComparison.Ordinal) || lower.Contains("feed_forward", StringComparison.Ordinal)
                 || lower.Contains("ffn", StringComparison.Ordinal) || lower.Contains("moe", StringComparison.Ordinal))
            role = leaf switch
            {
                "gate_proj" or "w1" or "gate" => TensorRole.MlpGate,
                "up_proj" or "w3" or "fc1" or "c_fc" or "dense_h_to_4h" or "fc_in" or "up" => TensorRole.MlpUp,
                "gate_up_proj" => TensorRole.MlpGateUp,
                "down_proj" or "w2" or "fc2" or "c_proj" or "dense_4h_to_h" or "fc_out" or "down" => TensorRole.MlpDown,
                _ => stacked > 0 && last.StartsWith("gate_up", StringComparison.Ordinal) ? TensorRole.MlpGateUp
                    : stacked > 0 && last.StartsWith("down", StringComparison.Ordinal) ? TensorRole.MlpDown
                    : TensorRole.Other,
            };
        else
            role = TensorRole.Other;
        return new ParameterTensor(name, shape, role, layer, expert) { StackedExperts = stacked };
    }

    private static bool IsNorm(string s) => s.Contains("norm", StringComparison.Ordinal) || s.StartsWith("ln_", StringComparison.Ordinal) || s == "ln_f.weight" || s == "ln_f.bias";

    [GeneratedRegex(@"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")]
    private static partial Regex LayerIndex();

    [GeneratedRegex(@"\.experts\.(\d+)\.")]
    private static partial Regex ExpertIndex();

    /// <summary>Keys of a decoder's config that either this path reads or that carry no memory (tokens, versions,
    /// initialisation, numerics); anything else may describe structure the generic path does not model.</summary>
    private static readonly HashSet<string> Understood = new(StringComparer.Ordinal)
    {
        "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "_name_or_path", "auto_map",
        "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "tie_word_embeddings",
        "use_cache", "initializer_range", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_eps", "hidden_act",
        "activation_function", "rope_theta", "rope_scaling", "rope_parameters", "attention_dropout", "hidden_dropout",
        "resid_pdrop", "embd_pdrop", "attn_pdrop", "dropout", "attention_bias", "mlp_bias", "bias",
        "num_attention_heads", "n_head", "num_heads", "hidden_size", "d_model", "n_embd", "num_hidden_layers", "n_layer",
        "num_layers", "vocab_size", "num_key_value_heads", "n_head_kv", "num_kv_heads", "head_dim", "intermediate_size",
        "ffn_hidden_size", "n_inner", "max_position_embeddings", "n_positions", "max_sequence_length",
        "num_experts_per_tok", "moe_top_k", "top_k", "experts_per_token", "moe_intermediate_size", "num_local_experts",
        "num_experts", "n_routed_experts", "router_aux_loss_coef", "output_router_logits", "pretraining_tp",
    };

    private static IReadOnlyList<string> UnreadKeys(ConfigFields c)
    {
        var unread = c.Keys.Where(k => !Understood.Contains(k)).Order(StringComparer.Ordinal).ToList();
        return unread.Count == 0 ? []
            : [$"config keys the generic path does not read (structure they describe is not planned): {string.Join(", ", unread.Take(20).Select(k => TerminalText.Escape(k.Length > 40 ? k[..40] + "…" : k)))}{(unread.Count > 20 ? $" and {unread.Count - 20} more" : "")}"];
    }
}
