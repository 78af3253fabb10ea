using System.Reflection;
using Afinado.Planner.Architecture;
using Afinado.Planner.Fit;

namespace Afinado.Planner.Catalog;

/// <summary>
/// Real Hugging Face config.json files embedded in the assembly, keyed by hub id (<c>meta-llama/Llama-3.1-8B</c>).
/// A resource named <c>org--name.json</c> is the config of <c>org/name</c>.
/// </summary>
public static class ModelCatalog
{
    private const string Prefix = "Afinado.Planner.Catalog.";
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Resources = new(LoadIndex);

    /// <summary>Every catalog id, sorted.</summary>
    public static IReadOnlyList<string> Ids => Resources.Value.Keys.Order(StringComparer.OrdinalIgnoreCase).ToList();

    /// <summary>
    /// One line per catalog model for listings such as <c>afinado plan --list-models</c>: id, model_type, parameters and
    /// active parameters (differs for MoE). Parsed once on first use.
    /// </summary>
    public static IReadOnlyList<CatalogEntry> Entries => EntriesCache.Value;

    private static readonly Lazy<IReadOnlyList<CatalogEntry>> EntriesCache = new(() =>
        Ids.Select(id => Get(id)).Select(a => new CatalogEntry(a.Name, a.ModelType, a.ParameterCount, a.ActiveParameterCount)).ToList());

    public static bool Contains(string id) => Resources.Value.ContainsKey(id);

    /// <summary>The raw config.json text of a catalog model (so other tools, e.g. the GPU script, see exactly what we parse).</summary>
    public static string ConfigJson(string id)
    {
        if (!Resources.Value.TryGetValue(id, out var resource))
            throw new InputError(PlanParameters.Model, $"\"{id}\" is not in the catalog",
                $"Use one of: {string.Join(", ", Ids)}; or pass a path to a config.json or a model folder.");
        using var stream = typeof(ModelCatalog).Assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public static ModelArchitecture Get(string id) =>
        HfConfigReader.Parse(ConfigJson(id), $"catalog:{id}") with { Name = CanonicalId(id) };

    private static string CanonicalId(string id) => Ids.First(k => string.Equals(k, id, StringComparison.OrdinalIgnoreCase));

    private static IReadOnlyDictionary<string, string> LoadIndex()
    {
        var index = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in Assembly.GetExecutingAssembly().GetManifestResourceNames())
        {
            if (!name.StartsWith(Prefix, StringComparison.Ordinal) || !name.EndsWith(".json", StringComparison.Ordinal)) continue;
            var file = name[Prefix.Length..^".json".Length];
            index[file.Replace("--", "/", StringComparison.Ordinal)] = name;
        }
        return index;
    }
}

/// <summary>A catalog model as listed: hub id, Hugging Face model_type, total and per-token (MoE) parameters.</summary>
public sealed record CatalogEntry(string Id, string ModelType, long Parameters, long ActiveParameters);
