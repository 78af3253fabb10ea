using System.CommandLine;
using System.Globalization;
using Afinado.Planner;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;

namespace Afinado.Cli.Commands;

/// <summary>The memory-curve flags of <c>afinado plan</c>: what to sweep, which values, and the figure.</summary>
internal sealed class CurveOptions
{
    public readonly Option<string?> Curve = new("--curve")
    {
        HelpName = "seq|batch",
        Description = "Memory against seq | batch: allocated, reserved and total per value, fits per GPU, and the largest value each GPU holds "
            + "(for inference, seq sweeps the context). Default values: seq doubling from 128 to max_position_embeddings; batch doubling from 1 past the largest that fits.",
    };
    public readonly Option<string?> Points = new("--curve-points") { HelpName = "V1,V2,...", Description = "Values for --curve, ascending, comma-separated, e.g. 512,1024,4096." };
    public readonly Option<string?> Range = new("--curve-range") { HelpName = "FROM:TO", Description = "Values for --curve as FROM:TO, doubling from FROM, TO last, e.g. 256:32768." };
    public readonly Option<string?> Plot = new("--plot") { HelpName = "FILE.png|FILE.svg", Description = "Write the --curve figure to FILE.png or FILE.svg (GiB against a log2 axis, one line per GPU capacity)." };

    public IEnumerable<Option> All => [Curve, Points, Range, Plot];

    /// <summary>The curve asked for, or null; flags that only make sense with --curve are refused without it.</summary>
    public CurveRequest? Request(ParseResult p)
    {
        string? parameter = p.GetValue(Curve);
        if (parameter is null)
        {
            var orphan = new[] { Points, Range, Plot }.FirstOrDefault(o => p.GetValue(o) is not null);
            if (orphan is not null)
                throw new InputError(orphan.Name, "describes a memory curve, and none was asked for", "Add --curve seq or --curve batch.");
            return null;
        }
        return new CurveRequest(parameter.Trim().ToLowerInvariant())
        {
            Points = p.GetValue(Points) is { } list ? ParseList(list) : null,
            Range = p.GetValue(Range) is { } range ? ParseRange(range) : null,
        };
    }

    /// <summary>The figure's path, checked before any planning so a wrong extension fails at once.</summary>
    public string? PlotPath(ParseResult p)
    {
        if (p.GetValue(Plot) is not { } path) return null;
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".png" or ".svg"))
            throw new InputError("--plot", $"\"{path}\" is neither a .png nor an .svg file", "Name the figure FILE.png or FILE.svg.");
        OutputPaths.File("--plot", path, folderMustExist: false); // CurvePlot creates the folder
        return path;
    }

    private static List<int> ParseList(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries).Select(v => ParseValue(v, "--curve-points", "e.g. --curve-points 512,1024,2048")).ToList();

    private static (int, int) ParseRange(string text)
    {
        var parts = text.Split(':', StringSplitOptions.TrimEntries);
        if (parts.Length != 2)
            throw new InputError("--curve-range", $"\"{text}\" is not FROM:TO", "Write e.g. --curve-range 256:32768.");
        return (ParseValue(parts[0], "--curve-range", "e.g. --curve-range 256:32768"), ParseValue(parts[1], "--curve-range", "e.g. --curve-range 256:32768"));
    }

    /// <summary>A whole number; the planner checks it against the swept parameter's limit.</summary>
    private static int ParseValue(string text, string flag, string example)
    {
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v))
            throw new InputError(flag, $"\"{text}\" is not a whole number", $"Write whole numbers, {example}.");
        if (v > Math.Max(Job.MaxSeq, Job.MaxBatch))
            throw new InputError(flag, $"{text} is larger than any sequence or batch", $"Use at most {Job.MaxSeq:N0} tokens or a batch of {Job.MaxBatch:N0}.");
        return (int)Math.Max(v, int.MinValue);
    }
}
