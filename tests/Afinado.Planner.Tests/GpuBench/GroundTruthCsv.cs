namespace Afinado.Planner.Tests.GpuBench;

/// <summary>
/// gpu-ground-truth.csv as written by measure.py. The script keeps every field free of commas and quotes
/// (lists use ';'), so a plain split is the whole parser; <see cref="Read"/> checks that promise.
/// </summary>
internal sealed class GroundTruthCsv
{
    public required IReadOnlyList<string> Columns { get; init; }
    public required IReadOnlyList<IReadOnlyDictionary<string, string>> Rows { get; init; }

    public IEnumerable<IReadOnlyDictionary<string, string>> Ok => Rows.Where(r => r["status"] == "ok");

    public static GroundTruthCsv Read(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToList();
        if (lines.Any(l => l.Contains('"')))
            throw new InvalidDataException($"{path} has a quoted field; measure.py promises none");
        var columns = lines[0].Split(',');
        var rows = new List<IReadOnlyDictionary<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            var fields = line.Split(',');
            if (fields.Length != columns.Length)
                throw new InvalidDataException($"{fields.Length} fields where the header has {columns.Length}: {line}");
            rows.Add(columns.Zip(fields).ToDictionary(p => p.First, p => p.Second));
        }
        return new GroundTruthCsv { Columns = columns, Rows = rows };
    }
}
