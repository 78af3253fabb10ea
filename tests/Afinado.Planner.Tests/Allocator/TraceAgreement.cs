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

    public static double TraceOverLedger(ModelProfile profile, Job job) =>
        StepTraces.For(profile, job).PeakLiveBytes / (double)(LedgerBuilder.Build(profile, job, DeviceKind.Gpu).PeakBytes + RuntimeStack.Default.WorkspaceBytes);
}
