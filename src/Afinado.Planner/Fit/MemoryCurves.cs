using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>
/// Builds a <see cref="MemoryCurve"/>: one ledger per sampled value (formulas not rendered), each judged per device by
/// <see cref="FitCheck.Verdict"/>, and the exact boundary per device by <see cref="FitSearch.Largest"/>, so the curve, the
/// verdicts and <c>--max</c> never disagree. The replay makes reserved and total wiggle with fragmentation, so the sampled
/// points show the boundary only roughly; the search gives it exactly.
/// </summary>
public static class MemoryCurves
{
    public static MemoryCurve Build(ModelProfile profile, Job job, IReadOnlyList<Device> devices, DeviceKind kind, CurveRequest request)
    {
        bool batch = request.Parameter switch
        {
            "batch" => true,
            "seq" => false,
            _ => throw new InputError(PlanParameters.Curve, $"\"{request.Parameter}\" cannot be swept", $"Use {PlanParameters.Curve} seq or {PlanParameters.Curve} batch."),
        };
        if (request.Points is not null && request.Range is not null)
            throw new InputError($"{PlanParameters.CurvePoints}/{PlanParameters.CurveRange}", "both were given", "Give the values one way: a list or a range.");
        int limit = FitSearch.Limit(profile, batch);
        // The user's values are checked before any search runs, so a typo is reported at once.
        var given = request.Points is { } list ? CurvePoints.Validate(list, limit, request.Parameter)
            : request.Range is { } range ? CurvePoints.FromRange(range.From, range.To, limit, request.Parameter)
            : null;
        // A device without a capacity (a CPU whose memory is unknown) has nothing to fit; one named twice is judged once.
        var judged = devices.Where(d => d.CapacityBytes > 0).DistinctBy(d => d.Id).ToList();
        var largest = judged.Select(d => new CurveLargest(d, FitSearch.Largest(profile, job, d, kind, request.Parameter))).ToList();
        // A sequence holds its images' tokens: shorter ones do not exist.
        int floor = FitSearch.Floor(profile.Architecture, job, batch);
        if (given?.FirstOrDefault(v => v < floor) is { } tooShort and > 0)
            throw new InputError(request.Points is not null ? PlanParameters.CurvePoints : PlanParameters.CurveRange,
                $"sequence {tooShort:N0} cannot hold the job's images ({floor:N0} tokens)", $"Start the sweep at {floor:N0} or more.");
        var values = (given ?? CurvePoints.Defaults(batch, limit, largest.Select(l => l.Value).DefaultIfEmpty(0).Max())).Where(v => v >= floor).ToList();
        var points = values.Select(v => Point(profile, FitSearch.With(job, batch, v), v, judged, kind)).ToList();
        return new MemoryCurve(request.Parameter, limit, kind, judged, points, largest);
    }

    private static CurvePoint Point(ModelProfile profile, Job job, int value, IReadOnlyList<Device> devices, DeviceKind kind)
    {
        var ledger = LedgerBuilder.Build(profile, job, kind, explain: false);
        var verdicts = devices.Select(d => FitCheck.Verdict(d, ledger, profile, job)).ToList();
        return new CurvePoint(value, ledger.PeakBytes, ledger.ReservedBytes, ledger.TotalBytes, verdicts);
    }
}
