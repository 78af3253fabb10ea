using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// How a training job is laid out over GPUs: world size, nodes, sharding, tensor/sequence parallelism and offload.
/// Data-parallel degree = GPUs / TP (no pipeline parallelism: DeepSpeed disallows it with ZeRO-2/3, and finetuning
/// setups in the references do not use it).
/// </summary>
public sealed record ParallelLayout
{
    public int Gpus { get; init; } = 1;
    public int Nodes { get; init; } = 1;
    public Sharding Sharding { get; init; } = Sharding.None;
    public int TensorParallel { get; init; } = 1;
    /// <summary>Megatron sequence parallelism: the norm/dropout regions are split along the sequence over the TP group.</summary>
    public bool SequenceParallel { get; init; }
    public Offload Offload { get; init; } = Offload.None;
    /// <summary>
    /// PyTorch FSDP API: 1 = FullyShardedDataParallel with flat parameters (accelerate's default, what the exporters
    /// write), 2 = per-parameter <c>fully_shard</c> (torchtune). Decides how CPU offload holds the shards in host RAM.
    /// </summary>
    public int FsdpVersion { get; init; } = 1;
    /// <summary>
    /// The token embedding and the head are FSDP units of their own, resharded after use (torchtune
    /// <c>custom_sharded_layers: ['tok_embeddings', 'output']</c>), instead of parts of the root unit that stays gathered
    /// from forward through backward.
    /// </summary>
    public bool ShardEmbeddingsSeparately { get; init; }
    /// <summary>
    /// Dtype of the frozen base in FSDP's sharded flat parameters when the model was loaded in another dtype than it
    /// computes in (PEFT's SFT example loads a non-quantized base in fp32 and accelerate's mixed_precision bf16 sets
    /// FSDP MixedPrecision(param_dtype=bf16)): the shards keep the loaded dtype, only the gathered copies are 16-bit.
    /// Null = the compute dtype.
    /// </summary>
    public DType? FsdpShardedDtype { get; init; }
    /// <summary>
    /// Expert-parallel degree: each rank of an expert-parallel group holds 1/EP of every MoE layer's routed experts and
    /// tokens travel to their experts by all-to-all. Planned as DeepSpeed AutoEP (<c>expert_parallel.autoep_size</c>,
    /// DeepSpeed docs/code-docs/source/autoep.rst): the EP groups split the data-parallel ranks, and ZeRO partitions the
    /// expert states over the expert-data-parallel group of DP / EP ranks (router and shared experts: the whole DP group).
    /// 1 = off.
    /// </summary>
    public int ExpertParallel { get; init; } = 1;

    public static ParallelLayout SingleGpu { get; } = new();

    public int GpusPerNode => Gpus / Nodes;
    public int DataParallel => Gpus / TensorParallel;
    public bool IsSingleGpu => Gpus == 1;

    /// <summary>Number of ranks each sharded state is split over (1 when nothing is sharded).</summary>
    public int ShardGroup => Sharding switch
    {
        Sharding.None => 1,
        Sharding.FsdpHybrid => GpusPerNode / TensorParallel,
        _ => DataParallel,
    };

    public ParallelEngine Engine => Sharding switch
    {
        Sharding.Zero1 or Sharding.Zero2 or Sharding.Zero3 => ParallelEngine.DeepSpeed,
        Sharding.FsdpFull or Sharding.FsdpGradOp or Sharding.FsdpHybrid => ParallelEngine.Fsdp,
        _ => ParallelEngine.DataParallel,
    };

    /// <summary>True when the layer weights live sharded and are gathered just in time (ZeRO-3, FSDP full/hybrid).</summary>
    public bool GathersParameters => Sharding is Sharding.Zero3 or Sharding.FsdpFull or Sharding.FsdpHybrid;

    /// <summary>Whether a state class is split over <see cref="ShardGroup"/> ranks at rest.</summary>
    public bool Shards(StateKind kind) => kind switch
    {
        StateKind.OptimizerStates => Sharding != Sharding.None,
        StateKind.Gradients => Sharding is not (Sharding.None or Sharding.Zero1),
        // SHARD_GRAD_OP keeps the full parameters from forward until backward ends, so at the peak they are whole.
        StateKind.Parameters => GathersParameters,
        _ => false,
    };

    /// <summary>ZeRO stage number as DeepSpeed's <c>zero_optimization.stage</c> spells it; FSDP maps to its ZeRO twin.</summary>
    public int ZeroStage => Sharding switch
    {
        Sharding.Zero1 => 1,
        Sharding.Zero2 or Sharding.FsdpGradOp => 2,
        Sharding.Zero3 or Sharding.FsdpFull or Sharding.FsdpHybrid => 3,
        _ => 0,
    };

    /// <summary>Short human description, e.g. "8 GPUs on 1 node, ZeRO-3, DP 8".</summary>
    public string Describe()
    {
        var parts = new List<string> { $"{Gpus} GPU{(Gpus == 1 ? "" : "s")} on {Nodes} node{(Nodes == 1 ? "" : "s")}", ShardingName(Sharding) };
        if (TensorParallel > 1) parts.Add($"TP {TensorParallel}{(SequenceParallel ? " + SP" : "")}");
        parts.Add($"DP {DataParallel}");
        if (ExpertParallel > 1) parts.Add($"EP {ExpertParallel}");
        if (Offload != Offload.None) parts.Add($"offload {Offload.ToString().ToLowerInvariant()} to CPU");
        return string.Join(", ", parts);
    }

    public static string ShardingName(Sharding s) => s switch
    {
        Sharding.None => "no sharding (DDP)",
        Sharding.Zero1 => "ZeRO-1",
        Sharding.Zero2 => "ZeRO-2",
        Sharding.Zero3 => "ZeRO-3",
        Sharding.FsdpFull => "FSDP full-shard",
        Sharding.FsdpGradOp => "FSDP shard-grad-op",
        Sharding.FsdpHybrid => "FSDP hybrid-shard",
        _ => s.ToString(),
    };

    /// <summary>Rejects layouts no engine can run, naming the flag and the fix. <paramref name="model"/> enables head checks.</summary>
    public ParallelLayout Validate(ModelArchitecture? model = null)
    {
        if (Gpus < 1)
            throw new InputError(LayoutParameters.Gpus, $"{Gpus} GPUs cannot run a job", $"Give {LayoutParameters.Gpus} 1 or more.");
        if (Gpus > 100_000)
            throw new InputError(LayoutParameters.Gpus, $"{Gpus} is beyond any cluster this planner models", $"Give {LayoutParameters.Gpus} 100000 or fewer.");
        if (Nodes < 1)
            throw new InputError(LayoutParameters.Nodes, $"{Nodes} nodes cannot run a job", $"Give {LayoutParameters.Nodes} 1 or more.");
        if (Nodes > Gpus)
            throw new InputError(LayoutParameters.Nodes, $"{Nodes} nodes for {Gpus} GPUs leaves nodes without a GPU", $"Give {LayoutParameters.Nodes} at most {LayoutParameters.Gpus}.");
        if (Gpus % Nodes != 0)
            throw new InputError(LayoutParameters.Nodes, $"{Gpus} GPUs do not split evenly over {Nodes} nodes", $"Give a {LayoutParameters.Nodes} that divides {LayoutParameters.Gpus} (every node runs the same number of processes).");
        if (TensorParallel < 1)
            throw new InputError(LayoutParameters.TensorParallel, $"tensor-parallel degree {TensorParallel} is not positive", $"Give {LayoutParameters.TensorParallel} 1 (off) or more.");
        if (GpusPerNode % TensorParallel != 0)
            throw new InputError(LayoutParameters.TensorParallel, $"TP {TensorParallel} does not divide the {GpusPerNode} GPUs of a node", $"Keep a tensor-parallel group inside one node: use a {LayoutParameters.TensorParallel} that divides {LayoutParameters.Gpus} / {LayoutParameters.Nodes}.");
        if (SequenceParallel && TensorParallel == 1)
            throw new InputError(LayoutParameters.SequenceParallel, $"sequence parallelism splits over the tensor-parallel group, and {LayoutParameters.TensorParallel} is 1", $"Give {LayoutParameters.TensorParallel} 2 or more together with {LayoutParameters.SequenceParallel}, or drop {LayoutParameters.SequenceParallel}.");
        if (model is not null && TensorParallel > 1)
        {
            if (model.NumHeads % TensorParallel != 0)
                throw new InputError(LayoutParameters.TensorParallel, $"TP {TensorParallel} does not divide the {model.NumHeads} attention heads of {NameOf(model)}", $"Use a {LayoutParameters.TensorParallel} that divides {model.NumHeads}.");
            if (model.NumKvHeads % TensorParallel != 0)
                throw new InputError(LayoutParameters.TensorParallel, $"TP {TensorParallel} does not divide the {model.NumKvHeads} key/value heads of {NameOf(model)}", $"Use a {LayoutParameters.TensorParallel} that divides {model.NumKvHeads} (Megatron would otherwise have to replicate KV heads).");
        }
        if (Engine == ParallelEngine.Fsdp && Offload == Offload.Optimizer)
            throw new InputError(LayoutParameters.Offload, "FSDP has no optimizer-only offload (CPUOffload moves parameters, gradients and the optimizer step)", $"Use {LayoutParameters.Offload} params with {LayoutParameters.Fsdp}, or {LayoutParameters.Zero} 1|2|3 {LayoutParameters.Offload} optimizer.");
        if (Offload == Offload.Optimizer && Sharding == Sharding.None)
            throw new InputError(LayoutParameters.Offload, "optimizer offload is a ZeRO feature (stages 1-3)", $"Add {LayoutParameters.Zero} 1, 2 or 3, or drop {LayoutParameters.Offload}.");
        if (Offload == Offload.Params && !(Sharding is Sharding.Zero3 || Engine == ParallelEngine.Fsdp))
            throw new InputError(LayoutParameters.Offload, "parameter offload needs ZeRO-3 (offload_param is stage-3 only) or FSDP", $"Use {LayoutParameters.Zero} 3 or {LayoutParameters.Fsdp} full with {LayoutParameters.Offload} params.");
        if (FsdpVersion is not (1 or 2))
            throw new InputError(LayoutParameters.FsdpVersion, $"{FsdpVersion} is not a PyTorch FSDP version", "Use 1 (FullyShardedDataParallel, accelerate's default) or 2 (fully_shard).");
        if (FsdpVersion == 2 && Engine != ParallelEngine.Fsdp)
            throw new InputError(LayoutParameters.FsdpVersion, "applies to FSDP layouts only", $"Add {LayoutParameters.Fsdp} full|grad-op|hybrid, or drop {LayoutParameters.FsdpVersion}.");
        if (ShardEmbeddingsSeparately && Sharding is not (Sharding.FsdpFull or Sharding.FsdpHybrid))
            throw new InputError(LayoutParameters.ShardEmbeddingsSeparately, $"shards the embedding and head as FSDP units of their own, which needs {LayoutParameters.Fsdp} full or hybrid", $"Add {LayoutParameters.Fsdp} full, or drop {LayoutParameters.ShardEmbeddingsSeparately}.");
        if (FsdpShardedDtype is { } sd && (Engine != ParallelEngine.Fsdp || sd is not (DType.Fp32 or DType.Bf16 or DType.Fp16)))
            throw new InputError(LayoutParameters.FsdpShardedDtype, $"{sd.Name()} {(Engine != ParallelEngine.Fsdp ? "applies to FSDP layouts only" : "is not a dtype a model is loaded in")}", $"Use fp32, bf16 or fp16 together with {LayoutParameters.Fsdp}, or drop {LayoutParameters.FsdpShardedDtype}.");
        if (Sharding == Sharding.FsdpHybrid && Nodes == 1)
            throw new InputError(LayoutParameters.Fsdp, "hybrid sharding replicates across nodes, and there is one node", $"Use {LayoutParameters.Fsdp} full on one node, or give {LayoutParameters.Nodes} 2 or more.");
        ValidateExpertParallel(model);
        return this;
    }

    /// <summary>
    /// Expert parallelism as DeepSpeed AutoEP runs it for transformers' MoE blocks (autoep.rst): ZeRO stages 1 and 2
    /// (stage 3 support is constrained and newer, and is not modelled), no tensor parallelism, no offload; the degree
    /// divides the routed experts of every MoE layer and, here, the data-parallel ranks (every EP group is whole).
    /// </summary>
    private void ValidateExpertParallel(ModelArchitecture? model)
    {
        if (ExpertParallel < 1)
            throw new InputError(LayoutParameters.ExpertParallel, $"expert-parallel degree {ExpertParallel} is not positive", $"Give {LayoutParameters.ExpertParallel} 1 (off) or more.");
        if (ExpertParallel == 1) return;
        if (Sharding is not (Sharding.Zero1 or Sharding.Zero2))
            throw new InputError(LayoutParameters.ExpertParallel, "expert parallelism is planned as DeepSpeed AutoEP (expert_parallel.autoep_size), which runs with ZeRO stages 1 and 2 here"
                + (Engine == ParallelEngine.Fsdp ? "; FSDP has no expert-parallel mode for transformers models" : ""), $"Give {LayoutParameters.Zero} 1 or {LayoutParameters.Zero} 2 with {LayoutParameters.ExpertParallel}, or drop {LayoutParameters.ExpertParallel}.");
        if (TensorParallel > 1)
            throw new InputError(LayoutParameters.ExpertParallel, "expert parallelism together with tensor parallelism is not modelled", $"Use {LayoutParameters.TensorParallel} 1 with {LayoutParameters.ExpertParallel}, or drop {LayoutParameters.ExpertParallel}.");
        if (Offload != Offload.None)
            throw new InputError(LayoutParameters.ExpertParallel, "expert parallelism with ZeRO-Offload is not modelled", $"Use {LayoutParameters.Offload} none with {LayoutParameters.ExpertParallel}, or drop {LayoutParameters.ExpertParallel}.");
        if (DataParallel % ExpertParallel != 0)
            throw new InputError(LayoutParameters.ExpertParallel, $"EP {ExpertParallel} does not divide the {DataParallel} data-parallel ranks", $"Use an {LayoutParameters.ExpertParallel} that divides {LayoutParameters.Gpus} / {LayoutParameters.TensorParallel}.");
        if (model is null) return;
        if (!model.IsMoE)
            throw new InputError(LayoutParameters.ExpertParallel, $"{NameOf(model)} has no routed experts to split", $"Drop {LayoutParameters.ExpertParallel}: it applies to mixture-of-experts models.");
        if (model.NumExperts % ExpertParallel != 0)
            throw new InputError(LayoutParameters.ExpertParallel, $"EP {ExpertParallel} does not divide the {model.NumExperts} routed experts of {NameOf(model)} (autoep_size must divide num_experts)",
                $"Use an {LayoutParameters.ExpertParallel} that divides {model.NumExperts}.");
    }

    private static string NameOf(ModelArchitecture m) => string.IsNullOrEmpty(m.Name) ? m.ModelType : m.Name;
}
