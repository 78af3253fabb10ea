using System.Text.Json;

namespace Afinado.Planner.Architecture;

/// <summary>
/// Linear-attention and state-space layers: Qwen3-Next's Gated DeltaNet (<c>layer_types</c> "linear_attention",
/// <c>linear_attn.*</c>), the Mamba / Mamba-2 mixers of Jamba, Falcon-H1, Granite 4 hybrids, Nemotron-H and Zamba 2
/// (<c>mamba_*</c> keys, <c>A_log</c>), LFM2's short convolutions (<c>layer_types</c> "conv"), RecurrentGemma's RG-LRU
/// (<c>block_types</c> "recurrent") and RWKV's time mixing. Such a layer keeps a fixed-size recurrent state per sequence
/// instead of a KV cache that grows with the context, and saves other tensors for backward. The planner models softmax
/// attention only, so a model with such layers is refused with what gave it away — planned as if every layer attended,
/// its KV cache and activations would be wrong for exactly those layers, and nothing would say so.
/// </summary>
internal static class RecurrentLayers
{
    /// <summary>Layer kinds in <c>layer_types</c> / <c>block_types</c> that are not softmax attention.</summary>
    private static readonly string[] Kinds =
        ["linear_attention", "mamba", "mamba2", "conv", "recurrent", "rwkv", "ssm", "deltanet", "gated_deltanet", "lightning_attention", "linear"];

    /// <summary>Config keys only hybrid or recurrent configs carry (transformers' config classes for the models above).</summary>
    private static readonly string[] Keys = ["hybrid_override_pattern", "layers_block_type", "attn_layer_period", "attn_layer_offset", "attn_type_list", "full_attention_interval"];
    private static readonly string[] KeyPrefixes = ["mamba_", "ssm_", "linear_num_", "linear_key_", "linear_value_", "linear_conv_"];

    /// <summary>Tensor-name fragments of recurrent mixers (lower case): Mamba's and DeltaNet's A_log, Qwen3-Next's
    /// linear_attn, the mamba submodules of hybrids, RWKV's time mixing, RecurrentGemma's RG-LRU, LFM2's conv block.</summary>
    private static readonly string[] TensorMarks = [".a_log", "linear_attn.", ".mamba.", "time_mix", "time_decay", "rg_lru", ".conv.in_proj"];

    /// <summary>What in the config (or, for a checkpoint, its tensor names) shows a layer that is not softmax attention:
    /// the key or tensor and what it says; null when nothing does.</summary>
    public static (string Key, string Evidence)? Find(ConfigFields c, IEnumerable<string>? tensorNames = null)
    {
        foreach (var listKey in new[] { "layer_types", "block_types" })
            if (c.Element(listKey) is { ValueKind: JsonValueKind.Array } list)
            {
                var kinds = list.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!).ToList();
                var recurrent = kinds.Where(IsRecurrentKind).ToList();
                if (recurrent.Count > 0)
                    return (listKey, $"{recurrent.Count} of its {kinds.Count} layers are {string.Join(" / ", recurrent.Distinct().Select(k => $"\"{Short(k)}\""))}");
            }
        foreach (var key in c.Keys)
            if (Keys.Contains(key, StringComparer.Ordinal) || KeyPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal)))
                return (key, "this key belongs to hybrid linear-attention / state-space configs");
        foreach (var name in tensorNames ?? [])
        {
            string lower = name.ToLowerInvariant();
            if (TensorMarks.Any(m => lower.Contains(m, StringComparison.Ordinal)))
                return ($"tensor \"{Short(name)}\"", "a linear-attention or state-space mixer's parameter");
        }
        return null;
    }

    /// <summary>Throws when <see cref="Find"/> finds a layer that is not softmax attention.</summary>
    public static void Refuse(ConfigFields c, IEnumerable<string>? tensorNames = null)
    {
        if (Find(c, tensorNames) is var (key, evidence)) throw c.Invalid(key, $"{evidence}: {NotModelled}", Fix);
    }

    /// <summary>Why such a model is not planned (the problem half of the refusal; inspect prints it beside its headers).</summary>
    public const string NotModelled = "linear-attention and state-space layers (a fixed recurrent state per sequence instead of a KV " +
        "cache that grows with the context, other tensors saved for backward) are not modelled, and planning them as attention " +
        "would misstate their cache and activations";

    private const string Fix = "`afinado inspect FOLDER` reads the checkpoint's exact weight bytes from its safetensors headers; the " +
        "planner plans softmax-attention decoders (full, sliding, chunked, MLA) only.";

    /// <summary>Whether a <c>layer_types</c> / <c>block_types</c> entry names a layer kind that is not softmax attention.</summary>
    private static bool IsRecurrentKind(string kind) => Kinds.Contains(kind.ToLowerInvariant(), StringComparer.Ordinal);

    private static string Short(string s) => TerminalText.Escape(s.Length <= 60 ? s : s[..60] + "…");
}
