using System.Text.Json;

using Afinado.Planner.Inputs;

namespace Afinado.Planner.Safetensors;

/// <summary>
/// All safetensors headers of one checkpoint: a single file, a folder of shards, or a sharded
/// <c>model.safetensors.index.json</c> whose <c>weight_map</c> must agree with the shards it names.
/// Only headers are read, so inspecting a 400B checkpoint costs a few megabytes of I/O.
/// </summary>
public sealed record SafetensorsCheckpoint(string Path, IReadOnlyList<SafetensorsFile> Files)
{
    public const string IndexFileName = "model.safetensors.index.json";

    public IEnumerable<SafetensorsTensor> Tensors => Files.SelectMany(f => f.Tensors);

    /// <summary>True when <see cref="Path"/> is a single .safetensors file that an index beside it shards with others.</summary>
    public bool IsLoneShard =>
        File.Exists(Path) && !Path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
        && File.Exists(System.IO.Path.Combine(Folder, IndexFileName));

    /// <summary>The folder a config.json would sit in.</summary>
    public string Folder => Directory.Exists(Path) ? Path : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;

    public static SafetensorsCheckpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            var index = System.IO.Path.Combine(path, IndexFileName);
            if (File.Exists(index)) return FromIndex(index, path);
            var shards = Directory.GetFiles(path, "*.safetensors").Order(StringComparer.Ordinal).ToList();
            if (shards.Count == 0)
                throw new InputError(InputFile.Describe(path), "holds no .safetensors files", "Point at a model folder downloaded from the Hugging Face hub, a .safetensors file, or its index.json.");
            return Checked(new SafetensorsCheckpoint(path, shards.Select(SafetensorsHeader.Read).ToList()));
        }
        if (!File.Exists(path))
            throw new InputError(InputFile.Describe(path), "does not exist", "Give a .safetensors file, a model.safetensors.index.json, or a folder holding them.");
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return FromIndex(path, path);
        return Checked(new SafetensorsCheckpoint(path, [SafetensorsHeader.Read(path)]));
    }

    private static SafetensorsCheckpoint FromIndex(string indexPath, string shownPath)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var weightMap = ReadWeightMap(indexPath);
        var files = new List<SafetensorsFile>();
        foreach (var shard in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var shardPath = System.IO.Path.Combine(folder, shard);
            if (!File.Exists(shardPath))
                throw new InputError(indexPath, $"names shard \"{shard}\", which is not in {folder}", "Download every shard the index lists.");
            files.Add(SafetensorsHeader.Read(shardPath));
        }
        var checkpoint = Checked(new SafetensorsCheckpoint(shownPath, files));
        foreach (var t in checkpoint.Tensors)
        {
            if (!weightMap.TryGetValue(t.Name, out var shard))
                throw new InputError(indexPath, $"weight_map does not list \"{SafetensorsHeader.Short(t.Name)}\", which is in {System.IO.Path.GetFileName(t.File)}", "The index and shards come from different downloads; fetch them again.");
            if (!string.Equals(System.IO.Path.GetFileName(t.File), shard, StringComparison.Ordinal))
                throw new InputError(indexPath, $"weight_map puts \"{SafetensorsHeader.Short(t.Name)}\" in {shard}, but it is in {System.IO.Path.GetFileName(t.File)}", "The index and shards come from different downloads; fetch them again.");
        }
        var present = checkpoint.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var absent = weightMap.Keys.FirstOrDefault(k => !present.Contains(k));
        if (absent is not null)
            throw new InputError(indexPath, $"weight_map lists \"{SafetensorsHeader.Short(absent)}\" in {weightMap[absent]}, but that shard has no such tensor", "The index and shards come from different downloads; fetch them again.");
        return checkpoint;
    }

    /// <summary>Reads and checks an index file's weight map (training loads shards through it too).</summary>
    public static Dictionary<string, string> ReadWeightMap(string indexPath) =>
        ReadWeightMap(InputFile.ReadAllBytes(indexPath, InputKind.SafetensorsIndex), InputFile.Describe(indexPath));

    /// <summary>Parses <c>{"weight_map": {"tensor": "shard.safetensors"}}</c>; shard names must be plain file names in the same folder.</summary>
    internal static Dictionary<string, string> ReadWeightMap(byte[] json, string source)
    {
        const string fix = "Point at the checkpoint's unmodified model.safetensors.index.json.";
        using (var doc = InputJson.Parse(json, source, InputKind.SafetensorsIndex, maxDepth: 8))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InputError(source, "has no weight_map object", fix);
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var e in map.EnumerateObject())
            {
                if (e.Value.ValueKind != JsonValueKind.String)
                    throw new InputError($"{source}: weight_map.{SafetensorsHeader.Short(e.Name)}", "must be a shard file name", fix);
                var shard = e.Value.GetString()!;
                if (shard.Length == 0 || shard != System.IO.Path.GetFileName(shard) || shard is "." or "..")
                    throw new InputError($"{source}: weight_map.{SafetensorsHeader.Short(e.Name)}", $"names \"{SafetensorsHeader.Short(shard)}\", not a file in the index's folder", fix);
                if (!result.TryAdd(e.Name, shard))
                    throw new InputError($"{source}: weight_map.{SafetensorsHeader.Short(e.Name)}", "appears twice", fix);
            }
            return result;
        }
    }

    /// <summary>A tensor name may appear in only one shard.</summary>
    private static SafetensorsCheckpoint Checked(SafetensorsCheckpoint c)
    {
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in c.Tensors)
            if (!seen.TryAdd(t.Name, t.File))
                throw new InputError(t.File, $"repeats tensor \"{SafetensorsHeader.Short(t.Name)}\", already in {seen[t.Name]}", "Shards of one checkpoint must not overlap; download it again.");
        return c;
    }

    /// <summary>Tensors, elements and bytes per dtype, sorted by bytes (largest first).</summary>
    public IReadOnlyList<DtypeTotal> ByDtype =>
        Tensors.GroupBy(t => t.Dtype)
            .Select(g => new DtypeTotal(g.Key, g.Count(), g.Sum(t => t.Elements), g.Sum(t => t.Bytes)))
            .OrderByDescending(d => d.Bytes).ThenBy(d => d.Dtype, StringComparer.Ordinal)
            .ToList();

    public long TotalElements => Tensors.Sum(t => t.Elements);
    public long TotalBytes => Tensors.Sum(t => t.Bytes);
}

public sealed record DtypeTotal(string Dtype, int Tensors, long Elements, long Bytes);
