using System.Text.Json.Nodes;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Export;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Parallel;

/// <summary>
/// Expert parallelism (<c>--ep</c>) as DeepSpeed AutoEP runs it: routed experts split over the EP group, ZeRO partitions
/// the expert states over the expert-data-parallel group, token all-to-all buffers, the EP and EDP communicators, and the
/// DeepSpeed JSON's <c>expert_parallel</c> section.
/// </summary>
public class ExpertParallelTests
{
    private const string Qwen3Moe = "Qwen/Qwen3-30B-A3B";
    private const string Mixtral = "mistralai/Mixtral-8x7B-v0.1";

    private static ParallelLedger Plan(ParallelJob job, int gpus, Sharding sharding, int ep) =>
        ParallelMemory.Plan(job, new ParallelLayout { Gpus = gpus, Sharding = sharding, ExpertParallel = ep }.Validate());

    private static long Line(ParallelLedger l, LineKind kind) => l.Gpu.Where(e => e.Kind == kind).Sum(e => e.RoundedBytes);

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void Frozen_routed_experts_are_split_over_the_ep_group_and_the_rest_stays_whole(int ep)
    {
        var arch = ModelCatalog.Get(Qwen3Moe);
        var job = Bridged.Job(Qwen3Moe, Bridged.Train(TrainingMethod.Lora));
        long experts = arch.Tensors.Where(t => t.IsExpert).Sum(t => t.Elements);
        long dense = arch.ParameterCount - experts;
        Assert.True(experts > 25_000_000_000, $"Qwen3-30B-A3B's routed experts hold most of its parameters ({experts:N0})");

        var withEp = Plan(job, 8, Sharding.Zero2, ep);
        Assert.Equal(2 * (dense + (double)experts / ep), Line(withEp, LineKind.WeightsFrozen), 2.0);
        var without = Plan(job, 8, Sharding.Zero2, 1);
        Assert.Equal(2L * arch.ParameterCount, Line(without, LineKind.WeightsFrozen));
        Assert.True(withEp.GpuPeakBytes < without.GpuPeakBytes);
    }

    [Fact]
    public void Sharded_states_keep_one_dp_share_because_zero_partitions_experts_over_the_expert_data_parallel_group()
    {
        // Full finetuning: gradients and optimizer states are sharded by ZeRO-2 over DP; experts/EP/(DP/EP) = experts/DP.
        var job = Bridged.Job(Mixtral, Bridged.Train(TrainingMethod.Full));
        var ep = Plan(job, 8, Sharding.Zero2, 4);
        var plain = Plan(job, 8, Sharding.Zero2, 1);
        foreach (var kind in new[] { LineKind.Gradients, LineKind.MasterWeights, LineKind.OptimizerState })
            Assert.Equal(Line(plain, kind), Line(ep, kind));
        // ZeRO-2 keeps the 16-bit trainable weights whole: there expert parallelism divides the experts by 4.
        var arch = ModelCatalog.Get(Mixtral);
        long experts = arch.Tensors.Where(t => t.IsExpert).Sum(t => t.Elements);
        Assert.Equal(2 * (arch.ParameterCount - experts + experts / 4.0), Line(ep, LineKind.WeightsTrainable), 2.0);
        // ZeRO-1 keeps the gradients whole too.
        var zero1 = Plan(job, 8, Sharding.Zero1, 4);
        Assert.Equal(2 * (arch.ParameterCount - experts + experts / 4.0), Line(zero1, LineKind.Gradients), 2.0);
    }

    [Fact]
    public void All_to_all_buffers_scale_with_tokens_top_k_and_hidden_and_the_ep_and_edp_communicators_are_charged()
    {
        var arch = ModelCatalog.Get(Qwen3Moe);
        var train = Bridged.Train(TrainingMethod.Lora, batch: 2, seq: 4096);
        var ledger = Plan(Bridged.Job(Qwen3Moe, train), 8, Sharding.Zero2, 4);
        long rows = 2L * 4096 * arch.ExpertsPerToken * arch.HiddenSize * 2;
        Assert.Equal(2 * rows, Line(ledger, LineKind.ExpertAllToAllBuffers));
        var nccl = ledger.Gpu.Where(e => e.Kind == LineKind.NcclCommunicator).Select(e => e.Name).ToList();
        Assert.Contains(nccl, n => n.Contains("expert-parallel group") && n.Contains("(4 ranks)"));
        Assert.Contains(nccl, n => n.Contains("expert data-parallel group") && n.Contains("(2 ranks)"));
        Assert.Equal(3, nccl.Count); // data-parallel, EP and EDP groups
        Assert.DoesNotContain(Plan(Bridged.Job(Qwen3Moe, train), 8, Sharding.Zero2, 1).Gpu, e => e.Kind == LineKind.ExpertAllToAllBuffers);
    }

    [Theory]
    [InlineData(8, Sharding.Zero3, 4, "ZeRO stages 1 and 2")]
    [InlineData(8, Sharding.None, 4, "ZeRO stages 1 and 2")]
    [InlineData(8, Sharding.FsdpFull, 4, "FSDP has no expert-parallel mode")]
    [InlineData(6, Sharding.Zero2, 4, "does not divide the 6 data-parallel ranks")]
    [InlineData(8, Sharding.Zero2, 0, "not positive")]
    public void Layouts_ep_cannot_run_are_refused_naming_the_flag(int gpus, Sharding sharding, int ep, string why)
    {
        var e = Assert.Throws<InputError>(() => new ParallelLayout { Gpus = gpus, Sharding = sharding, ExpertParallel = ep }.Validate());
        Assert.Equal(LayoutParameters.ExpertParallel, e.Parameter);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void The_model_must_have_routed_experts_the_degree_divides()
    {
        var layout = new ParallelLayout { Gpus = 8, Sharding = Sharding.Zero2, ExpertParallel = 8 };
        Assert.Contains("no routed experts", Assert.Throws<InputError>(() => layout.Validate(ModelCatalog.Get("meta-llama/Llama-3.1-8B"))).Message);
        var mixtral = layout with { Gpus = 16, ExpertParallel = 16 };
        Assert.Contains("does not divide the 8 routed experts", Assert.Throws<InputError>(() => mixtral.Validate(ModelCatalog.Get(Mixtral))).Message);
        layout.Validate(ModelCatalog.Get(Qwen3Moe));
    }

    [Fact]
    public void The_fewest_gpus_search_keeps_the_expert_parallel_degree_on_layouts_autoep_runs()
    {
        var arch = ModelCatalog.Get(Qwen3Moe);
        var plan = Planner.Fit.Planner.Create(arch, Bridged.Train(TrainingMethod.Lora, checkpointing: false), [], suggestFixes: false);
        var h100 = GpuCatalog.Get("h100");
        var withEp = MultiGpuPlanner.FewestGpus(plan, new LayoutRequest(new ParallelLayout { Gpus = 8, Sharding = Sharding.Zero2, ExpertParallel = 4 }, true, false, null), h100, EngineFamily.DeepSpeed);
        Assert.NotNull(withEp);
        Assert.Equal(4, withEp!.Chosen!.Layout.ExpertParallel);
        Assert.True(withEp.Chosen.Layout.Sharding is Sharding.Zero1 or Sharding.Zero2);
        Assert.Equal(4, withEp.Chosen.Layout.Gpus);
        // The same layout without expert parallelism does not fit: the experts' split is what made 4 GPUs enough.
        var sameWithoutEp = ParallelMemory.Plan(PlanBridge.FromPlan(plan), withEp.Chosen.Layout with { ExpertParallel = 1 });
        Assert.False(sameWithoutEp.FitsGpu(h100.CapacityBytes));
        Assert.True(withEp.Chosen.Ledger.GpuPeakBytes < ParallelMemory.Plan(PlanBridge.FromPlan(plan), withEp.Chosen.Layout with { ExpertParallel = 1 }).GpuPeakBytes);
    }

    [Fact]
    public void The_deepspeed_export_writes_autoep_with_the_familys_preset_and_other_files_point_at_it()
    {
        var arch = ModelCatalog.Get(Qwen3Moe);
        var request = new LayoutRequest(new ParallelLayout { Gpus = 8, Sharding = Sharding.Zero2, ExpertParallel = 8 }, true, false, null);
        var ds = EngineExport.Create(arch, Bridged.Train(TrainingMethod.Lora), ExportFormat.DeepSpeed, request, [GpuCatalog.Get("h100")], new LaunchSettings());
        Assert.Null(ds.DoesNotFit);
        Assert.Equal("ds_zero2_ep8.json", ds.File!.FileName);
        var ep = JsonNode.Parse(ds.File.Content)!["expert_parallel"]!.AsObject();
        Assert.True((bool)ep["enabled"]!);
        Assert.Equal(8, (int)ep["autoep_size"]!);
        Assert.Equal("qwen3_moe", (string)ep["preset_model"]!);
        Assert.Contains(ds.File.Assumptions, a => a.Contains("AutoEP"));

        var torchrun = EngineExport.Create(arch, Bridged.Train(TrainingMethod.Lora), ExportFormat.Torchrun, request, [GpuCatalog.Get("h100")], new LaunchSettings());
        Assert.Contains("--deepspeed ds_zero2_ep8.json", torchrun.File!.Content);
        var accelerate = EngineExport.Create(arch, Bridged.Train(TrainingMethod.Lora), ExportFormat.Accelerate, request, [GpuCatalog.Get("h100")], new LaunchSettings());
        Assert.Contains("deepspeed_config_file: ds_zero2_ep8.json", accelerate.File!.Content);
    }

    [Fact]
    public void A_family_without_an_autoep_preset_is_planned_but_not_exported()
    {
        var arch = ModelCatalog.Get("meta-llama/Llama-4-Scout-17B-16E");
        var job = Bridged.Train(TrainingMethod.Lora);
        var request = new LayoutRequest(new ParallelLayout { Gpus = 8, Sharding = Sharding.Zero2, ExpertParallel = 8 }, true, false, null);
        var plan = MultiGpuPlanner.Create(Planner.Fit.Planner.Create(arch, job, [], suggestFixes: false), request, [GpuCatalog.Get("h100")], EngineFamily.DeepSpeed);
        Assert.Contains(plan.Verdicts[0].Ledger.Gpu, e => e.Kind == LineKind.ExpertAllToAllBuffers);
        var e = Assert.Throws<InputError>(() => EngineExport.Create(arch, job, ExportFormat.DeepSpeed, request, [], new LaunchSettings()));
        Assert.Equal(LayoutParameters.ExpertParallel, e.Parameter);
        Assert.Contains("no preset for llama4", e.Message);
        Assert.Equal("qwen3_moe", AutoEpPresets.ForModelType("qwen2_moe"));
    }
}
