using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Tests.Parallel;

public class ParallelLayoutTests
{
    private static readonly ModelArchitecture Llama8B = ModelCatalog.Get("meta-llama/Llama-3.1-8B"); // 32 heads, 8 KV heads

    private static InputError Rejects(ParallelLayout layout, ModelArchitecture? model = null) =>
        Assert.Throws<InputError>(() => layout.Validate(model));

    [Fact]
    public void Zero_gpus_is_rejected_naming_the_flag()
    {
        var e = Rejects(new ParallelLayout { Gpus = 0 });
        Assert.Equal(LayoutParameters.Gpus, e.Parameter);
    }

    [Theory]
    [InlineData(4, 8)]  // more nodes than GPUs
    [InlineData(6, 4)]  // nodes do not divide GPUs
    [InlineData(2, 0)]
    public void Nodes_that_do_not_fit_the_gpus_are_rejected(int gpus, int nodes) =>
        Assert.Equal(LayoutParameters.Nodes, Rejects(new ParallelLayout { Gpus = gpus, Nodes = nodes }).Parameter);

    [Fact]
    public void Tp_must_divide_heads_and_kv_heads()
    {
        var heads = Rejects(new ParallelLayout { Gpus = 3, TensorParallel = 3 }, Llama8B);
        Assert.Equal(LayoutParameters.TensorParallel, heads.Parameter);
        Assert.Contains("32 attention heads", heads.Message);
        // 16 divides the 32 query heads but not the 8 KV heads.
        var kv = Rejects(new ParallelLayout { Gpus = 16, TensorParallel = 16 }, Llama8B);
        Assert.Contains("8 key/value heads", kv.Message);
        new ParallelLayout { Gpus = 8, TensorParallel = 8, SequenceParallel = true }.Validate(Llama8B);
    }

    [Fact]
    public void Offload_and_engine_combinations_no_engine_runs_are_rejected()
    {
        Assert.Equal(LayoutParameters.Offload, Rejects(new ParallelLayout { Gpus = 2, Offload = Offload.Optimizer }).Parameter);
        Assert.Equal(LayoutParameters.Offload, Rejects(new ParallelLayout { Gpus = 2, Sharding = Sharding.Zero2, Offload = Offload.Params }).Parameter);
        Assert.Equal(LayoutParameters.Offload, Rejects(new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull, Offload = Offload.Optimizer }).Parameter);
        Assert.Equal(LayoutParameters.SequenceParallel, Rejects(new ParallelLayout { Gpus = 2, SequenceParallel = true }).Parameter);
        Assert.Equal(LayoutParameters.Fsdp, Rejects(new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpHybrid }).Parameter);
        Assert.Equal(LayoutParameters.TensorParallel, Rejects(new ParallelLayout { Gpus = 8, Nodes = 4, TensorParallel = 4 }).Parameter);
    }

    [Fact]
    public void Degrees_follow_from_gpus_nodes_and_tp()
    {
        var l = new ParallelLayout { Gpus = 16, Nodes = 2, TensorParallel = 2, Sharding = Sharding.FsdpHybrid }.Validate(Llama8B);
        Assert.Equal(8, l.GpusPerNode);
        Assert.Equal(8, l.DataParallel);
        Assert.Equal(4, l.ShardGroup);
        Assert.Equal(
            [("FSDP shard group (within node)", 4), ("FSDP replicate group (across nodes)", 2), ("tensor-parallel group", 2)],
            NcclOverhead.Communicators(l));
    }

    [Fact]
    public void Tensor_parallel_splits_all_but_norms()
    {
        double f = ModelGranularity.TensorParallelShardableFraction(Llama8B);
        long norms = Llama8B.Tensors.Where(t => t.Role == TensorRole.Norm).Sum(t => t.Elements);
        Assert.Equal(1 - (double)norms / Llama8B.ParameterCount, f, 12);
        Assert.Equal(128_256L * 4096, ModelGranularity.LargestModule(Llama8B)); // the embedding (= lm_head size)
        Assert.Equal(2L * 128_256 * 4096 + 4096, ModelGranularity.LargestWrapUnit(Llama8B)); // root: embed + lm_head + norm
    }
}
