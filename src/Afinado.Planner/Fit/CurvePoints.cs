using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>
/// The values a memory curve samples: the user's (<c>--curve-points</c>, <c>--curve-range</c>), validated against the
/// parameter's limit, or defaults that cover the useful range in doublings (memory grows about linearly or quadratically
/// in both parameters, so a log₂ axis spaces the points evenly).
/// </summary>
public static class CurvePoints
{
    /// <summary>Beyond this many points the table stops being readable and the replays stop being instant.</summary>
    public const int MaxPoints = 64;

    /// <summary>Default sequence points start here (a short prompt), or lower for models with short contexts.</summary>
    public const int DefaultSeqStart = 128;

    /// <summary>Default batch points double at least up to here, so even a curve where nothing fits shows its slope.</summary>
    public const int DefaultBatchEnd = 8;

    /// <summary>
    /// Sequence: doublings from 128 (lower when the model's limit would leave fewer than 8 points) to the limit, the limit
    /// itself last. Batch: doublings from 1 to the first one no device holds (<paramref name="largestFitting"/> is the
    /// largest fitting value over all devices), at least to 8.
    /// </summary>
    public static IReadOnlyList<int> Defaults(bool batch, int limit, int largestFitting)
    {
        if (batch) return Doublings(1, (int)Math.Min(limit, CeilPowerOfTwo(Math.Max(DefaultBatchEnd, (long)largestFitting + 1))));
        return Doublings((int)Math.Max(1, Math.Min(DefaultSeqStart, FloorPowerOfTwo(limit) >> 7)), limit);
    }

    /// <summary><c>--curve-range FROM:TO</c>: FROM, 2·FROM, 4·FROM, … and TO itself last.</summary>
    public static IReadOnlyList<int> FromRange(int from, int to, int limit, string parameter)
    {
        var flag = PlanParameters.CurveRange;
        if (from < 1 || to <= from)
            throw new InputError(flag, $"{from}:{to} is not an increasing range of positive values", $"Give FROM:TO with 1 ≤ FROM < TO, e.g. {PlanParameters.CurveRange} 256:32768.");
        CheckWithinLimit(flag, to, limit, parameter);
        return Doublings(from, to);
    }

    /// <summary><c>--curve-points</c>: positive, strictly ascending, within the limit, at most <see cref="MaxPoints"/>.</summary>
    public static IReadOnlyList<int> Validate(IReadOnlyList<int> points, int limit, string parameter)
    {
        var flag = PlanParameters.CurvePoints;
        if (points.Count == 0)
            throw new InputError(flag, "no values given", $"List values separated by commas, e.g. {PlanParameters.CurvePoints} 512,1024,2048.");
        if (points.Count > MaxPoints)
            throw new InputError(flag, $"{points.Count} values is too many to tabulate", $"Give at most {MaxPoints}, or a {PlanParameters.CurveRange}.");
        for (int i = 0; i < points.Count; i++)
        {
            if (points[i] < 1)
                throw new InputError(flag, $"{points[i]} is not a positive {parameter}", "Use values of 1 or more.");
            if (i > 0 && points[i] <= points[i - 1])
                throw new InputError(flag, $"{points[i]} follows {points[i - 1]}", "List the values in ascending order, each once.");
            CheckWithinLimit(flag, points[i], limit, parameter);
        }
        return points;
    }

    private static void CheckWithinLimit(InputParameter flag, int value, int limit, string parameter)
    {
        if (value <= limit) return;
        throw parameter == "seq"
            ? new InputError(flag, $"{value} is beyond the model's max_position_embeddings ({limit:N0})", $"Use sequence values up to {limit}.")
            : new InputError(flag, $"{value} is beyond the largest batch a job may have ({limit:N0})", $"Use batch values up to {limit}.");
    }

    /// <summary><paramref name="start"/>, 2·start, 4·start, … below <paramref name="end"/>, then <paramref name="end"/> itself.</summary>
    private static IReadOnlyList<int> Doublings(int start, int end)
    {
        var values = new List<int>();
        for (long v = start; v < end && values.Count < MaxPoints - 1; v *= 2) values.Add((int)v);
        values.Add(end);
        return values;
    }

    private static long FloorPowerOfTwo(int v) => v < 1 ? 1 : 1L << (31 - int.LeadingZeroCount(v));

    private static long CeilPowerOfTwo(long v) => v <= 1 ? 1 : 1L << (int)(64 - long.LeadingZeroCount(v - 1));
}
