using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Parallel;

public class PlanBridgeTests
{
    private const string L8B = "meta-llama/Llama-3.1-8B";

    [Fact]
    public void Full_amp_adamw_model_states_are_the_zero_papers_16_bytes_per_parameter()
    {
        var job = Bridged.Job(L8B, Bridged.Train(TrainingMethod.Full));
        long p = ModelCatalog.Get(L8B).ParameterCount;
        double always = job.ModelStates.Where(s => s.Phase == Phase.Step).Sum(s => (double)s.Bytes);
        Assert.Equal(16.0 * p, always, 16.0);
        Assert.Equal(2.0 * p, job.ModelStates.Where(s => s.Class == StateKind.Parameters).Sum(s => (double)s.Bytes), 4.0);
        Assert.Equal(12.0 * p, job.ModelStates.Where(s => s.Class == StateKind.OptimizerStates && s.Phase == Phase.Step).Sum(s => (double)s.Bytes), 8.0);
    }

    [Fact]
    public void A_plain_data_parallel_rank_carries_the_single_gpu_replays_fragmentation_and_sharded_ranks_the_assumed_reserve()
    {
        var single = Planner.Fit.Planner.Create(ModelCatalog.Get(L8B), Bridged.Train(TrainingMethod.Lora, batch: 2, checkpointing: false), [], suggestFixes: false);
        var job = PlanBridge.FromPlan(single);
        var ddp = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2 }.Validate());
        var line = Assert.Single(ddp.Gpu, l => l.Kind == LineKind.AllocatorFragmentation);
        Assert.Equal(single.Ledger.FragmentationBytes, line.Bytes, tolerance: 1);
        Assert.Contains(ddp.Gpu, l => l.Kind == LineKind.CublasWorkspaces);
        var zero3 = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.Zero3 }.Validate());
        Assert.DoesNotContain(zero3.Gpu, l => l.Kind == LineKind.AllocatorFragmentation);
        Assert.Contains(zero3.Gpu, l => l.Kind == LineKind.AllocatorReserve);
    }

    [Fact]
    public void Activations_come_from_the_single_gpu_ledger_with_their_moments()
    {
        var single = Planner.Fit.Planner.Create(ModelCatalog.Get(L8B), Bridged.Train(TrainingMethod.Lora, batch: 4, checkpointing: false), [], suggestFixes: false);
        var job = PlanBridge.FromPlan(single);
        // Entries live only at the last layer's attention or the head's backward have no moment in the parallel ledger (it has
        // no forward-last-layer or head-backward moment).
        var fromLedger = single.Ledger.Tensors.Where(e => e.Category is Category.Activations or Category.Logits or Category.Temporary && e.Kind != LineKind.OptimizerTemporaries
            && e.Phases is not (Phase.ForwardLastLayer or Phase.BackwardHead)).ToList();
        Assert.Equal(fromLedger.Count, job.Activations.Count);
        Assert.Equal(fromLedger.Sum(e => e.RoundedBytes), job.Activations.Sum(a => a.Bytes));
        // Logits: forward and backward are separate moments, never summed together.
        var logits = job.Activations.Where(a => a.Kind.CategoryOf() == Category.Logits).ToList();
        Assert.Equal(2, logits.Count);
        Assert.Equal(Phase.None, logits[0].Phase & logits[1].Phase);
        // Norm inputs stay whole under TP without SP (Korthikanti's sequence region); per-head tensors split.
        Assert.All(job.Activations.Where(a => a.Kind is LineKind.ActivationsNorms or LineKind.ActivationsFinalNormAndHeadInput), a => Assert.Equal(TensorParallelSplit.SequenceRegion, a.Split));
        Assert.All(job.Activations.Where(a => a.Kind == LineKind.ActivationsAttentionCore), a => Assert.Equal(TensorParallelSplit.TensorRegion, a.Split));
    }

    [Fact]
    public void One_gpu_without_sharding_adds_only_what_the_engine_adds()
    {
        // On one GPU with no sharding the parallel ledger holds the same activations as the single-GPU plan; the
        // difference is the engine accounting of model states, not new terms (no NCCL, buckets or gathered units).
        var job = Bridged.Job(L8B, Bridged.Train(TrainingMethod.Lora));
        var ledger = ParallelMemory.Plan(job, ParallelLayout.SingleGpu);
        Assert.DoesNotContain(ledger.Gpu, l => l.Kind is LineKind.NcclCommunicator or LineKind.DdpReducerBuckets or LineKind.ZeroReduceBucket
            or LineKind.ZeroAllGatherBucket or LineKind.Zero3GatheredParameters or LineKind.FsdpGatheredLayers or LineKind.FsdpRootUnit
            or LineKind.FsdpHeadUnit or LineKind.FsdpEmbeddingUnit);
    }

    [Fact]
    public void Inference_plans_are_refused_for_multi_gpu_layouts()
    {
        var plan = Planner.Fit.Planner.Create(ModelCatalog.Get(L8B), new Job { Task = JobTask.Infer }, [], suggestFixes: false);
        Assert.Equal(JobParameters.Task, Assert.Throws<InputError>(() => PlanBridge.FromPlan(plan)).Parameter);
    }
}
