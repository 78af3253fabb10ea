namespace Afinado.Planner.Parallel;

/// <summary>
/// The parameters of a <see cref="ParallelLayout"/>, named as the snake_case of its properties; <c>zero</c> and <c>fsdp</c> are the
/// two engines its <see cref="ParallelLayout.Sharding"/> chooses between, <c>gpus_per_node</c> the search's node shape,
/// <c>cpu_bytes_per_node</c> the CPU RAM per node a <see cref="LayoutRequest"/> allows.
/// </summary>
public static class LayoutParameters
{
    public static readonly InputParameter Gpus = new("gpus");
    public static readonly InputParameter Nodes = new("nodes");
    public static readonly InputParameter GpusPerNode = new("gpus_per_node");
    public static readonly InputParameter Zero = new("zero");
    public static readonly InputParameter Fsdp = new("fsdp");
    public static readonly InputParameter TensorParallel = new("tensor_parallel");
    public static readonly InputParameter SequenceParallel = new("sequence_parallel");
    public static readonly InputParameter Offload = new("offload");
    public static readonly InputParameter FsdpVersion = new("fsdp_version");
    public static readonly InputParameter ShardEmbeddingsSeparately = new("shard_embeddings_separately");
    public static readonly InputParameter FsdpShardedDtype = new("fsdp_sharded_dtype");
    public static readonly InputParameter ExpertParallel = new("expert_parallel");
    public static readonly InputParameter CpuBytesPerNode = new("cpu_bytes_per_node");
}
