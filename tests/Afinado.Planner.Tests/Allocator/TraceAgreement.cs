using Afinado.Planner.Allocator;
using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Tests.Allocator;

/// <summary>What the trace tests share: their model × job cases, and the trace's allocated peak over the ledger's (plus
/// the stack's cuBLAS workspaces, which the trace allocates and the ledger counts as runtime).</summary>
internal static class TraceAgreement
{
    public static TheoryData<string, int> Cases(IEnumerable<string> models, int jobs)
    {
        var data = new TheoryData<string, int>();
        foreach (string id in models)
            for (int j = 0; j < jobs; j++) data.Add(id, j);
        return data;
    }

    public static ModelProfile Profile(ModelArchitecture arch, Job job) => ModelProfile.Create(Fit.Planner.SelectionFor(arch, job));

    /// <summary>The job is replayed (a fragmentation line, no assumed reserve) and its trace peaks within
    /// <paramref name="tolerance"/> of the ledger.</summary>
    public static void ReplayedAndAgrees(ModelArchitecture arch, Job job, double tolerance = 0.02)
    {
        var profile = Profile(arch, job);
        Assert.Null(ReservedMemory.NotReplayed(profile, job));
        var ledger = LedgerBuilder.Build(profile, job, DeviceKind.Gpu);
        Assert.Contains(ledger.Runtime, e => e.Kind == LineKind.AllocatorFragmentation);
        Assert.DoesNotContain(ledger.Runtime, e => e.Kind == LineKind.AllocatorReserve);
        Assert.InRange(TraceOverLedger(profile, job), 1 - tolerance, 1 + tolerance);
    }

    public static double TraceOverLedger(ModelProfile profile, Job job) =>
        StepTraces.For(profile, job).PeakLiveBytes / (double)(LedgerBuilder.Build(profile, job, DeviceKind.Gpu).PeakBytes + RuntimeStack.Default.WorkspaceBytes);
}
