using System.Text.Json.Nodes;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// The multi-GPU part of the <c>afinado.plan/1</c> JSON contract: <c>parallel</c> (the layout and its degrees),
/// <c>cpu_bytes_per_node</c>, and the per-GPU / per-node components with their formulas.
/// </summary>
public static class ParallelJson
{
    public static JsonObject Layout(ParallelLayout l) => new()
    {
        ["gpus"] = l.Gpus,
        ["nodes"] = l.Nodes,
        ["gpus_per_node"] = l.GpusPerNode,
        ["engine"] = l.Engine switch { ParallelEngine.DeepSpeed => "deepspeed", ParallelEngine.Fsdp => "fsdp", _ => "ddp" },
        ["sharding"] = l.Sharding switch
        {
            Sharding.None => "none",
            Sharding.Zero1 => "zero1",
            Sharding.Zero2 => "zero2",
            Sharding.Zero3 => "zero3",
            Sharding.FsdpFull => "fsdp-full",
            Sharding.FsdpGradOp => "fsdp-grad-op",
            _ => "fsdp-hybrid",
        },
        ["zero_stage"] = l.ZeroStage,
        ["tensor_parallel"] = l.TensorParallel,
        ["sequence_parallel"] = l.SequenceParallel,
        ["data_parallel"] = l.DataParallel,
        ["expert_parallel"] = l.ExpertParallel,
        ["shard_group"] = l.ShardGroup,
        ["offload"] = l.Offload.ToString().ToLowerInvariant(),
        ["description"] = l.Describe(),
    };

    /// <summary>The fields the plan JSON gains for a parallel layout.</summary>
    public static JsonObject Ledger(ParallelLedger ledger)
    {
        var parallel = Layout(ledger.Layout);
        parallel["gpu_peak_bytes"] = ledger.GpuPeakBytes;
        parallel["gpu_peak_phase"] = ledger.GpuPeakPhase.StepName();
        parallel["gpu_components"] = Lines(ledger.Gpu);
        parallel["cpu_components"] = Lines(ledger.CpuPerNode);
        return new JsonObject { ["parallel"] = parallel, ["cpu_bytes_per_node"] = ledger.CpuBytesPerNode };
    }

    private static JsonArray Lines(IEnumerable<LedgerEntry> lines) => new(lines.Select(l => (JsonNode)new JsonObject
    {
        ["name"] = l.Name,
        ["kind"] = l.Kind.ToString(),
        ["bytes"] = l.RoundedBytes,
        ["formula"] = l.Formula,
        ["source"] = l.Source,
        ["phase"] = l.Phases.StepName(),
        ["moments"] = new JsonArray(Phases.StepMomentsWithVisionTower.Append(Phase.ModelLoad).Where(m => (l.Phases & m) != 0).Select(m => (JsonNode)m.StepName()).ToArray()),
    }).ToArray());
}
