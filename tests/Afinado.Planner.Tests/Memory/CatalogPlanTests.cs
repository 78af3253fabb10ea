using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Memory;

/// <summary>Every catalog model plans for every method and for inference, with sane orderings.</summary>
public class CatalogPlanTests
{
    public static TheoryData<string> Ids => new(ModelCatalog.Ids);

    [Theory]
    [MemberData(nameof(Ids))]
    public void Every_catalog_model_plans_and_methods_order_as_expected(string id)
    {
        var arch = ModelCatalog.Get(id);
        long Peak(Job job) => Planner.Fit.Planner.Create(arch, job, [GpuCatalog.Get("h100")]).Ledger.PeakBytes;
        var baseJob = new Job { Batch = 1, Seq = 512, Checkpointing = Checkpointing.Full };
        long full = Peak(baseJob with { Method = TrainingMethod.Full });
        long lora = Peak(baseJob with { Method = TrainingMethod.Lora });
        long qlora = Peak(baseJob with { Method = TrainingMethod.QLora });
        // bf16 inference holds the bf16 weights; a checkpoint stored smaller (gpt-oss's MXFP4 experts) plans less by default.
        long infer = Peak(new Job { Task = JobTask.Infer, Seq = 512, WeightsDtype = DType.Bf16 });
        if (arch.CheckpointQuantMethod is not null) Assert.True(Peak(new Job { Task = JobTask.Infer, Seq = 512 }) < infer);
        Assert.True(full > lora, $"{id}: full {full} ≤ lora {lora}");
        Assert.True(lora > qlora, $"{id}: lora {lora} ≤ qlora {qlora}");
        Assert.True(infer >= 2 * arch.ParameterCount, $"{id}: inference {infer} below bf16 weights");
        Assert.True(full >= 8 * arch.ParameterCount, $"{id}: pure-bf16 AdamW needs 8 B/param");
    }
}
