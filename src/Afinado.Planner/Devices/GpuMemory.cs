using System.Globalization;
using Afinado.Planner.Fit;

namespace Afinado.Planner.Devices;

/// <summary>
/// <c>--gpu-memory</c> as people say it. A card "sold as 48 GB" carries 48 GiB of memory (vendors count memory in binary
/// units), of which PyTorch sees a little less after ECC and driver reservations; so:
/// <list type="bullet">
/// <item><c>48GB</c> / <c>1TB</c> (decimal spelling, as on the box): 48 GiB on board, usable = 48 GiB × the median
/// usable ÷ on-board ratio of the catalog's cards whose usable figure is measured (memory.md §5.1);</item>
/// <item><c>47.2GiB</c>, <c>48000MiB</c> (binary spelling): that much usable memory, exactly, as
/// <c>torch.cuda.get_device_properties().total_memory</c> reports it;</item>
/// <item><c>B</c>, <c>KB</c>, <c>MB</c>: exact decimal bytes of usable memory.</item>
/// </list>
/// The interpretation is printed with every plan, so a reader sees which number the verdict used.
/// </summary>
public static class GpuMemory
{
    /// <summary>Median usable ÷ on-board memory over the catalog's cards (on board = the marketed size in GiB).</summary>
    public static double UsableRatio { get; } = ComputeRatio();

    /// <summary>More memory than one GPU can carry: the largest accelerators announced hold about 1 TB (NVIDIA's Rubin
    /// Ultra, announced for 2027), the catalog's largest 192 GB (MI300X). Above this, <c>48TB</c> for <c>48GB</c> is the
    /// likely meaning, and a plan against it would say "fits" for anything.</summary>
    public const long MaxOnBoardBytes = 2L << 40;

    public static Device Parse(string text, InputText? field = null)
    {
        field ??= PlanParameters.GpuMemory;
        long bytes = ByteSize.Parse(text, field);
        string unit = new string(text.Where(char.IsLetter).ToArray()).ToUpperInvariant();
        // A marketed size (GB, TB) is that many GiB on board; any other spelling is the usable memory itself.
        bool marketed = unit is "GB" or "TB";
        double onBoard = marketed ? bytes / 1e9 * ByteSize.GiB : bytes;
        if (onBoard > MaxOnBoardBytes)
            throw new InputError(field, $"\"{text.Trim()}\" is more memory than one GPU carries (the largest announced hold about 1 TB)",
                unit.StartsWith('T') ? $"Give the memory of one card, e.g. {text.Trim()[..^unit.Length]}{(unit == "TB" ? "GB" : "GiB")}." : "Give the memory of one card, e.g. 48GB or 80GB.");
        var ci = CultureInfo.InvariantCulture;
        if (marketed)
        {
            long usable = (long)(onBoard * UsableRatio);
            string why = string.Create(ci, $"\"{text.Trim()}\" read as a card sold as {bytes / 1e9:0.##} GB: {onBoard / ByteSize.GiB:0.##} GiB on board, " +
                $"{usable / ByteSize.GiB:F2} GiB usable (× {UsableRatio:F4}, the catalog's median usable/on-board ratio); give GiB for an exact usable size") +
                EccNote(ci);
            return Device.Custom(usable, (long)onBoard, why);
        }
        string exact = unit.EndsWith("IB", StringComparison.Ordinal)
            ? string.Create(ci, $"\"{text.Trim()}\" read as usable memory (as torch reports total_memory): {ByteSize.Format(bytes)}")
            : string.Create(ci, $"\"{text.Trim()}\" read as {bytes:N0} bytes of usable memory");
        return Device.Custom(bytes, bytes, exact);
    }

    /// <summary>Below this usable/on-board share a catalog card runs with ECC on (the data-centre GDDR cards: T4, L4, A10G,
    /// L40, L40S, RTX 6000 Ada report 91–93 %, the others 96–99 %).</summary>
    private const double EccShare = 0.95;

    /// <summary>Catalog cards whose usable figure is a report (not derived or assumed), with their usable ÷ on-board share
    /// (on board = the marketed GB read as GiB).</summary>
    private static IEnumerable<(Device Card, double Share)> ReportedShares() => GpuCatalog.All
        .Where(g => !g.Source.Contains("assumed", StringComparison.Ordinal) && !g.Source.StartsWith("derived", StringComparison.Ordinal))
        .Select(g => (g, g.CapacityBytes / (g.NominalBytes / 1e9 * ByteSize.GiB)));

    private static double ComputeRatio()
    {
        var ratios = ReportedShares().Select(r => r.Share).Order().ToList();
        return ratios.Count % 2 == 1 ? ratios[ratios.Count / 2] : (ratios[ratios.Count / 2 - 1] + ratios[ratios.Count / 2]) / 2;
    }

    /// <summary>The median share is wrong by several GiB for a card with ECC on (an L40S sold as 48 GB reports 44.42 GiB,
    /// 2.6 GiB below 48GB read with the median): the interpretation names those cards, whose ids give their own figure.</summary>
    private static string EccNote(CultureInfo ci)
    {
        var ecc = ReportedShares().Where(r => r.Share < EccShare).ToList();
        if (ecc.Count == 0) return "";
        return string.Create(ci, $"; cards with ECC on report less ({string.Join(", ", ecc.Select(r => r.Card.Id))}: " +
            $"{ecc.Min(r => r.Share):P1}–{ecc.Max(r => r.Share):P1} of their memory): name such a card by its id, not its memory, for its own figure");
    }
}
