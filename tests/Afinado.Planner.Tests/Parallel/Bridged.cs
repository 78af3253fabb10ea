using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Parallel;

/// <summary>Multi-GPU jobs built the way the CLI builds them: a single-GPU plan, bridged.</summary>
internal static class Bridged
{
    public static ParallelJob Job(string model, Job job) =>
        PlanBridge.FromPlan(Planner.Fit.Planner.Create(ModelCatalog.Get(model), job, [], suggestFixes: false));

    public static Job Train(TrainingMethod method, int batch = 1, bool checkpointing = true, int seq = 2048) => new()
    {
        Method = method,
        Lora = method.UsesAdapters() ? new LoraConfig() : null,
        Precision = method == TrainingMethod.QLora ? Precision.Bf16 : Precision.AmpBf16,
        Batch = batch,
        Seq = seq,
        Checkpointing = checkpointing ? Checkpointing.Full : Checkpointing.None,
    };
}
