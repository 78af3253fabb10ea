using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Fit;

/// <summary>Fits or OOM on one device, with headroom (negative when it does not fit).</summary>
public sealed record DeviceVerdict(Device Device, bool Fits, long HeadroomBytes);

/// <summary>A change to the job, with the plan it gives.</summary>
public sealed record FitFix(string Change, Job Job, long PeakBytes, long TotalBytes, bool Fits);

/// <summary>The largest value of a parameter that fits the first device (0 when even 1 does not).</summary>
public sealed record SearchResult(string Parameter, int Value);

/// <summary>Everything <c>afinado plan</c> reports: the ledger, verdicts, fixes and an optional search.</summary>
public sealed record Plan(
    ModelArchitecture Architecture,
    Job Job,
    TrainableSelection Selection,
    DeviceKind DeviceKind,
    MemoryLedger Ledger,
    IReadOnlyList<DeviceVerdict> Verdicts,
    IReadOnlyList<FitFix> Fixes,
    SearchResult? Search)
{
    public const string Schema = "afinado.plan/1";

    /// <summary>True when at least one device fits (or none was given).</summary>
    public bool FitsAny => Verdicts.Count == 0 || Verdicts.Any(v => v.Fits);
}
