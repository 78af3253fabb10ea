using Afinado.Planner.Devices;

namespace Afinado.Planner.Fit;

/// <summary>
/// What <c>--curve</c> asks for: the job parameter to sweep (<c>seq</c> or <c>batch</c>) and, optionally, the values;
/// without them <see cref="CurvePoints"/> picks defaults.
/// </summary>
public sealed record CurveRequest(string Parameter)
{
    /// <summary>Values given one by one (<c>--curve-points</c>).</summary>
    public IReadOnlyList<int>? Points { get; init; }
    /// <summary>A first and last value, doubling in between (<c>--curve-range</c>).</summary>
    public (int From, int To)? Range { get; init; }
}

/// <summary>
/// One sampled value: the three memory figures of its ledger and, per device of the curve (same order), its verdict by
/// <see cref="FitCheck.Verdict"/>, the rule every verdict uses.
/// </summary>
public sealed record CurvePoint(int Value, long AllocatedBytes, long ReservedBytes, long TotalBytes, IReadOnlyList<DeviceVerdict> Verdicts)
{
    public IEnumerable<bool> Fits => Verdicts.Select(v => v.Fits);
}

/// <summary>The largest value that fits one device, by <see cref="FitSearch.Largest"/> (so the curve and <c>--max</c> agree); 0 when even 1 does not fit.</summary>
public sealed record CurveLargest(Device Device, int Value);

/// <summary>
/// Memory against sequence length or batch: allocated (tensors at the peak), reserved (the allocator replay) and total
/// (what the GPU holds) per sampled value, and the exact largest value that fits each device.
/// </summary>
/// <param name="Parameter"><c>seq</c> or <c>batch</c>. For inference, <c>seq</c> sweeps the context (prompt capped at --seq).</param>
/// <param name="Limit">The largest value the parameter may take (max_position_embeddings for seq); a largest equal to it means
/// everything fits.</param>
/// <param name="Devices">The devices with a capacity, each once; <paramref name="Largest"/> and every point's verdicts follow this order.</param>
public sealed record MemoryCurve(string Parameter, int Limit, DeviceKind DeviceKind, IReadOnlyList<Device> Devices,
    IReadOnlyList<CurvePoint> Points, IReadOnlyList<CurveLargest> Largest);
