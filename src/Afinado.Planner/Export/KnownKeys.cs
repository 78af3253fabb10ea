namespace Afinado.Planner.Export;

/// <summary>
/// The documented keys of each engine, kept in <c>Export/known-keys/*.txt</c> with their sources and embedded in the
/// assembly. Exporters check every key they write against these lists, so a typo cannot reach a user's config.
/// </summary>
public static class KnownKeys
{
    private static readonly Lazy<IReadOnlySet<string>> DeepSpeedKeys = new(() => Load("deepspeed"));
    private static readonly Lazy<IReadOnlySet<string>> AccelerateKeys = new(() => Load("accelerate"));
    private static readonly Lazy<IReadOnlySet<string>> TorchrunKeys = new(() => Load("torchrun"));

    public static IReadOnlySet<string> DeepSpeed => DeepSpeedKeys.Value;
    public static IReadOnlySet<string> Accelerate => AccelerateKeys.Value;
    public static IReadOnlySet<string> Torchrun => TorchrunKeys.Value;

    /// <summary>Throws (a bug, not bad input) when a writer produced a key the engine does not document.</summary>
    internal static void Check(IEnumerable<string> keys, IReadOnlySet<string> known, string engine)
    {
        var unknown = keys.Where(k => !known.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new InvalidOperationException($"{engine} exporter wrote undocumented keys: {string.Join(", ", unknown)}");
    }

    private static IReadOnlySet<string> Load(string engine)
    {
        var name = $"Afinado.Planner.Export.known-keys.{engine}.txt";
        using var stream = typeof(KnownKeys).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .ToHashSet(StringComparer.Ordinal);
    }
}
