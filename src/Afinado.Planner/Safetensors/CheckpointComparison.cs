using Afinado.Planner.Architecture;

namespace Afinado.Planner.Safetensors;

/// <summary>Two stored tensors, <paramref name="First"/> and <paramref name="Second"/>, that both map to the config's <paramref name="Name"/>.</summary>
public sealed record AmbiguousTensor(string Name, string First, string Second);

/// <summary>A tensor whose checkpoint shape differs from what the config implies.</summary>
public sealed record ShapeMismatch(string Name, long[] Expected, long[] Actual);

/// <summary>
/// How a checkpoint's tensors line up with <see cref="ModelArchitecture.Tensors"/> from its config.json.
/// Tolerated without complaint, and listed so a user can see them: checkpoints saved from the base model (names
/// without <c>model.</c>/<c>transformer.</c>), non-persistent buffers old exports include (attention masks, RoPE
/// <c>inv_freq</c>), and a stored copy of a tied <c>lm_head</c>. Not tolerated: two stored tensors that land on one
/// parameter (<c>norm.weight</c> beside <c>model.norm.weight</c>), since a loader would keep either one.
/// </summary>
public sealed record CheckpointComparison(
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<ShapeMismatch> WrongShape,
    IReadOnlyList<string> IgnoredBuffers,
    IReadOnlyList<string> TiedCopies,
    string? StrippedPrefix,
    int Matched,
    IReadOnlyList<AmbiguousTensor> Ambiguous)
{
    public bool Matches => Missing.Count == 0 && Unexpected.Count == 0 && WrongShape.Count == 0 && Ambiguous.Count == 0;

    /// <summary>Suffixes of buffers (not parameters) that some exported checkpoints contain.</summary>
    private static readonly string[] BufferSuffixes =
        [".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias", ".rotary_emb.inv_freq"];

    public static CheckpointComparison Compare(ModelArchitecture arch, IEnumerable<SafetensorsTensor> tensors)
    {
        // What the checkpoint stores for each parameter: the parameter itself, or the packed tensors its format keeps
        // (MXFP4 blocks and scales, FP8 weights with block scales, GPTQ/AWQ/bitsandbytes tensors).
        var layout = StoredLayout.Of(arch);
        var expected = layout.ToDictionary(e => e.Stored, e => e.Shape, StringComparer.Ordinal);
        // Parameter name → the stored name that supplied it, so a second supplier is reported with the first.
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        var ambiguous = new List<AmbiguousTensor>();
        var unexpected = new List<string>();
        var wrong = new List<ShapeMismatch>();
        var buffers = new List<string>();
        var tied = new List<string>();
        string? stripped = null;
        var embedding = arch.Tensors.FirstOrDefault(t => t.Role == TensorRole.TokenEmbedding);

        foreach (var t in tensors)
        {
            string name = t.Name;
            if (!expected.ContainsKey(name) && expected.ContainsKey(arch.BaseModelPrefix + name))
            {
                name = arch.BaseModelPrefix + name;
                stripped = arch.BaseModelPrefix;
            }
            if (expected.TryGetValue(name, out var shape))
            {
                if (!found.TryAdd(name, t.Name))
                {
                    ambiguous.Add(new AmbiguousTensor(name, found[name], t.Name));
                    continue;
                }
                if (!shape.AsSpan().SequenceEqual(t.Shape)) wrong.Add(new ShapeMismatch(name, shape, t.Shape));
            }
            else if (arch.TiedEmbeddings && embedding is not null && IsHeadName(name) && embedding.Shape.AsSpan().SequenceEqual(t.Shape))
                tied.Add(t.Name);
            else if (BufferSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal)))
                buffers.Add(t.Name);
            else
                unexpected.Add(t.Name);
        }
        // A parameter is present when every tensor its format stores for it is.
        var missing = layout.Where(e => !found.ContainsKey(e.Stored)).Select(e => e.Parameter).Distinct(StringComparer.Ordinal).ToList();
        int matched = layout.Select(e => e.Parameter).Distinct(StringComparer.Ordinal).Count() - missing.Count;
        return new CheckpointComparison(missing, unexpected, wrong, buffers, tied, stripped, matched, ambiguous);
    }

    private static bool IsHeadName(string name) => name is "lm_head.weight" or "embed_out.weight";
}
