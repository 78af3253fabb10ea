using System.Text.Json.Nodes;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Parallel;

public class ParallelJsonTests
{
    [Fact]
    public void Json_carries_the_layout_cpu_bytes_and_components_that_sum_to_the_ledger()
    {
        var job = Bridged.Job("meta-llama/Llama-3.1-8B", Bridged.Train(TrainingMethod.Full));
        var ledger = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 16, Nodes = 2, Sharding = Sharding.Zero3, Offload = Offload.Optimizer }.Validate());
        var json = JsonNode.Parse(ParallelJson.Ledger(ledger).ToJsonString())!;
        var p = json["parallel"]!;
        Assert.Equal(16, p["gpus"]!.GetValue<int>());
        Assert.Equal(8, p["gpus_per_node"]!.GetValue<int>());
        Assert.Equal("zero3", p["sharding"]!.GetValue<string>());
        Assert.Equal("optimizer", p["offload"]!.GetValue<string>());
        Assert.Equal(16, p["data_parallel"]!.GetValue<int>());
        Assert.Equal(ledger.CpuBytesPerNode, json["cpu_bytes_per_node"]!.GetValue<long>());
        Assert.True(ledger.CpuBytesPerNode > 0);
        var gpu = p["gpu_components"]!.AsArray();
        // The peak is the largest sum over the step's moments of the components live at that moment.
        long At(string moment) => gpu.Where(c => c!["moments"]!.AsArray().Any(m => m!.GetValue<string>() == moment)).Sum(c => c!["bytes"]!.GetValue<long>());
        string[] moments = ["forward", "backward (start)", "backward (end)", "optimizer step"];
        Assert.Equal(p["gpu_peak_bytes"]!.GetValue<long>(), moments.Max(At));
        Assert.Contains(p["gpu_peak_phase"]!.GetValue<string>(), moments);
        Assert.All(gpu, c => Assert.False(string.IsNullOrEmpty(c!["formula"]!.GetValue<string>())));
    }
}
