namespace Afinado.Training.Tests;

/// <summary>Finds bench/ground-truth above the test binaries and reads its simple CSVs (no quoted commas) by column name.</summary>
internal static class GroundTruthFiles
{
    public static string DirectoryHolding(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "bench", "ground-truth");
            if (File.Exists(Path.Combine(candidate, file))) return candidate;
        }
        throw new FileNotFoundException($"bench/ground-truth/{file} not found above " + AppContext.BaseDirectory);
    }

    public static List<Dictionary<string, string>> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        var head = lines[0].Split(',');
        return lines.Skip(1).Where(l => l.Length > 0).Select(l => l.Split(','))
            .Select(f => head.Select((h, i) => (h, v: f[i])).ToDictionary(x => x.h, x => x.v)).ToList();
    }
}
