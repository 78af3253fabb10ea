namespace Afinado.Planner.Architecture;

/// <summary>
/// Bounds that separate a real model from a typo or a hostile file. Every family checks derived widths against them
/// and <see cref="ArchitectureFamilies"/> checks the total, so no count downstream (bytes = params × 18, activations ×
/// batch × seq) can overflow a <c>long</c> silently.
/// </summary>
public static class ArchitectureLimits
{
    /// <summary>Most layers accepted. The deepest released LLMs have ~130; a few thousand would still be plausible research.</summary>
    public const int MaxLayers = 4096;

    /// <summary>Most experts per layer accepted (released MoEs have ≤ 512).</summary>
    public const int MaxExperts = 4096;

    /// <summary>Most expert MLPs in the whole model (layers × experts; released MoEs have ≤ 25k); bounds the tensor list we materialise.</summary>
    public const long MaxExpertMlps = 65_536;

    /// <summary>
    /// Most parameters accepted: 10¹⁵, a thousand times Llama 3.1 405B's size and small enough that bytes for every
    /// training state (≤ 20 B/param) stay far below 2⁶³. A 10¹³-parameter config is counted exactly.
    /// </summary>
    public const long MaxParameters = 1_000_000_000_000_000;

    /// <summary>Config keys that scale the parameter count, under every family's spelling; the ones present are named in errors.</summary>
    private static readonly string[] SizeKeys =
        ["num_hidden_layers", "n_layer", "hidden_size", "n_embd", "intermediate_size", "n_inner", "ffn_hidden_size", "vocab_size", "num_local_experts", "num_experts", "moe_intermediate_size"];

    /// <summary>Checks the architecture's total with checked arithmetic and rejects absurd totals with the offending config named.</summary>
    internal static ModelArchitecture Check(ModelArchitecture arch, ConfigFields cfg)
    {
        var sizes = cfg.Integers(SizeKeys);
        // Name the keys this config actually uses (n_embd for GPT-2, hidden_size for Llama) with their values.
        string keys = string.Join(" / ", sizes.Select(s => s.Key));
        string values = string.Join(", ", sizes.Select(s => $"{s.Key} = {s.Value:N0}"));
        long total = 0;
        try
        {
            foreach (var t in arch.Tensors) total = checked(total + t.Elements);
        }
        catch (OverflowException)
        {
            throw cfg.Invalid(keys, $"imply more than 2⁶³ parameters ({values})", "Check config.json for a typo in a width or layer count.");
        }
        if (total > MaxParameters)
            throw cfg.Invalid(keys, $"imply {total:N0} parameters ({values}), beyond any real model (limit {MaxParameters:N0})",
                "Check config.json for a typo in a width or layer count.");
        return arch;
    }

    /// <summary>A width derived from several config values (e.g. heads × head_dim) that must itself be a sane dimension.</summary>
    internal static int Width(ConfigFields cfg, string keys, long value)
    {
        if (value > ConfigFields.MaxDimension)
            throw cfg.Invalid(keys, $"give a width of {value:N0}, beyond any real model (limit {ConfigFields.MaxDimension:N0})", "Check config.json for a typo.");
        return (int)value;
    }
}
