using Afinado.Planner.Allocator;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Allocator;

/// <summary>Every catalog family (GPT-2's Conv1D, Falcon's parallel residual, phi, Gemma, MQA, MoE…) through the replay.</summary>
public class ReplayCatalogTests
{
    public static TheoryData<string> Models() => [.. ModelCatalog.Ids];

    [Theory]
    [MemberData(nameof(Models))]
    public void Every_catalog_model_replays_or_says_why_and_reserved_never_undercuts_the_tensors(string id)
    {
        var arch = ModelCatalog.Get(id);
        foreach (var job in new[]
        {
            new Job { Method = TrainingMethod.Lora, Seq = 256 },
            new Job { Method = TrainingMethod.Full, Precision = Precision.AmpBf16, Checkpointing = Checkpointing.Full, Seq = 256 },
            new Job { Method = TrainingMethod.QLora, Seq = 256 },
            new Job { Task = JobTask.Infer, Seq = 256, Context = 260 },
        })
        {
            var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job));
            var l = LedgerBuilder.Build(profile, job, Devices.DeviceKind.Gpu);
            string? why = ReservedMemory.NotReplayed(profile, job);
            Assert.Equal(why is null, l.Replay is not null);
            Assert.True(l.ReservedBytes >= l.PeakBytes, $"{id} {job.Method} {job.Task}");
            Assert.True(l.TotalBytes > l.ReservedBytes);
            if (l.Replay is { } r)
            {
                Assert.False(r.OutOfMemory);
                // The trace's allocated peak stays within 5 % of the ledger's for every family (two derivations of one step;
                // 0.97–1.035 measured over the catalog at 256 tokens).
                Assert.InRange(r.PeakAllocatedBytes / (double)(l.PeakBytes + RuntimeStack.Default.WorkspaceBytes), 0.95, 1.05);
            }
        }
    }
}
