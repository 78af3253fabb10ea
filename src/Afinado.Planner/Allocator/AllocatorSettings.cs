using System.Globalization;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// The caching allocator's knobs a user sets through <c>PYTORCH_CUDA_ALLOC_CONF</c> (the planner's <c>--alloc-conf</c>),
/// as c10/cuda/CUDAAllocatorConfig.cpp parses them: comma-separated <c>key:value</c> pairs. Only the two keys that change
/// where blocks land are modelled; the others change timing or bookkeeping, not the peak of one step, and are refused so
/// a typo is never silently ignored.
/// </summary>
public sealed record AllocatorSettings
{
    public static readonly AllocatorSettings Default = new();

    /// <summary><c>expandable_segments:True</c>: one growing virtual segment per stream and pool, mapped in pages.</summary>
    public bool ExpandableSegments { get; init; }

    /// <summary><c>max_split_size_mb:N</c>: blocks this large or larger are never split (null: unlimited, the default).</summary>
    public long? MaxSplitSizeBytes { get; init; }

    /// <summary>The accepted keys, for error messages and help text.</summary>
    public const string Accepted = "expandable_segments:True|False, max_split_size_mb:N (N > 20)";

    /// <summary>Parses the <c>PYTORCH_CUDA_ALLOC_CONF</c> syntax; an empty string is the default.</summary>
    public static AllocatorSettings Parse(string? text, InputText? field = null)
    {
        field ??= JobParameters.AllocConf;
        var s = Default;
        if (string.IsNullOrWhiteSpace(text)) return s;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = part.IndexOf(':');
            if (colon <= 0)
                throw new InputError(field, $"\"{part}\" is not key:value", $"Write PYTORCH_CUDA_ALLOC_CONF syntax, e.g. expandable_segments:True. Accepted: {Accepted}.");
            string key = part[..colon].Trim(), value = part[(colon + 1)..].Trim();
            switch (key)
            {
                case "expandable_segments":
                    s = s with
                    {
                        ExpandableSegments = value switch
                        {
                            "True" or "true" or "1" => true,
                            "False" or "false" or "0" => false,
                            _ => throw new InputError(field, $"expandable_segments must be True or False, not \"{value}\"", "Write expandable_segments:True."),
                        },
                    };
                    break;
                case "max_split_size_mb":
                    // CUDAAllocatorConfig::parseMaxSplitSize: the value is MB (2^20 B) and must exceed kLargeBuffer (20 MB).
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long mb) || mb <= 20 || mb > 1 << 30)
                        throw new InputError(field, $"max_split_size_mb must be a whole number of MB above 20, not \"{value}\"", "Write e.g. max_split_size_mb:128 (PyTorch refuses 20 or less).");
                    s = s with { MaxSplitSizeBytes = mb << 20 };
                    break;
                default:
                    throw new InputError(field, $"\"{key}\" is not modelled", $"Accepted: {Accepted}. Other keys (garbage_collection_threshold, roundup_power2_divisions, …) are not supported by the planner.");
            }
        }
        return s;
    }

    /// <summary>The setting as PYTORCH_CUDA_ALLOC_CONF would spell it ("" for the default).</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (ExpandableSegments) parts.Add("expandable_segments:True");
        if (MaxSplitSizeBytes is { } m) parts.Add($"max_split_size_mb:{m >> 20}");
        return string.Join(",", parts);
    }
}
