using Afinado.Planner.Memory;
using System.Globalization;

namespace Afinado.Planner.Parallel;

/// <summary>
/// Turns a single-GPU job into the per-GPU and per-node ledger of a parallel layout:
/// model states split by TP and sharded by ZeRO/FSDP class, offloaded states moved to CPU RAM, the engine's own buffers
/// (ZeRO-3/FSDP gathered units and prefetch, gradient buckets, DeepSpeed's fp32 gradient partition, DDP's reducer
/// buckets), activations split per Korthikanti, NCCL communicators, and the runtime overheads.
/// </summary>
public static class ParallelMemory
{
    private const string ZeroPaper = "ZeRO (Rajbhandari et al. 2019) §5, memory.md §1.3";
    private const string DsConfig = "DeepSpeed config-json.md / stage_1_and_2.py, stage3.py (ecosystem.md §6.1-6.2)";

    public static ParallelLedger Plan(ParallelJob job, ParallelLayout layout, DeepSpeedSettings? settings = null)
    {
        settings ??= DeepSpeedSettings.For(layout.ZeroStage, job.HiddenSize, job.TrainableParameters);
        var gpu = new List<LedgerEntry>();
        var cpu = new List<LedgerEntry>();
        int n = layout.ShardGroup, t = layout.TensorParallel, perNode = layout.GpusPerNode;
        double tpFactor = TpFactor(job, t);
        string tpText = t > 1 ? $" × ({job.TensorParallelShardableFraction:0.####}/{t} + {1 - job.TensorParallelShardableFraction:0.####})" : "";

        // 1. Model states: TP split, then the ZeRO/FSDP class sharding, then offload.
        // DeepSpeed with offload reduces 16-bit gradients bucket by bucket straight into the CPU fp32 partition (step 2):
        // no 16-bit gradient partition is kept anywhere.
        bool gradientsGoStraightToCpu = layout.Engine == ParallelEngine.DeepSpeed && layout.Offload != Offload.None && job.SixteenBitTraining;
        bool fsdp1Pinned = layout.Engine == ParallelEngine.Fsdp && layout.Offload == Offload.Params && layout.FsdpVersion == 1
            && job.FsdpUnitBytes.Count > 0 && t == 1;
        if (fsdp1Pinned) AddFsdp1PinnedShards(job, layout, cpu);
        foreach (var state in job.ModelStates)
        {
            if (gradientsGoStraightToCpu && state.Class == StateKind.Gradients) continue;
            bool sharded = layout.Shards(state.Class) && state.Shardable && n > 1;
            // FSDP MixedPrecision shards the frozen base in the dtype it was loaded in (torch/distributed/fsdp/_flat_param.py
            // keeps the flat parameter's dtype; _mp_shard / _full_param_padded are the param_dtype copies).
            bool loadedDtype = layout.Engine == ParallelEngine.Fsdp && layout.FsdpShardedDtype is not null && state.FrozenFloatWeights;
            double bytesPerElement = loadedDtype ? layout.FsdpShardedDtype!.Value.Bytes() : state.BytesPerElement;
            double bytes = Math.Ceiling(state.Elements * bytesPerElement) * tpFactor / (sharded ? n : 1);
            string formula = $"{Num(state.Elements)} × {bytesPerElement:0.####} B{tpText}{(sharded ? $" / {n}" : "")}";
            if (layout.ExpertParallel > 1 && state.ExpertElements > 0)
                (bytes, formula) = ExpertParallelShare(state, bytesPerElement, layout, sharded, bytes, formula);
            string name = (loadedDtype ? $"frozen weights ({layout.FsdpShardedDtype!.Value.Name()} as loaded, FSDP MixedPrecision)" : state.Name) + (sharded ? $" (sharded /{n})" : "");
            if (layout.ExpertParallel > 1 && state.ExpertElements > 0 && !sharded) name += $" (routed experts /{layout.ExpertParallel})";
            if (IsOffloaded(state.Class, layout.Offload) && state.Shardable)
            {
                // FSDP1 holds offloaded weights and gradients in pinned flat-parameter buffers, counted per unit below.
                if (fsdp1Pinned && state.Class is StateKind.Parameters or StateKind.Gradients) continue;
                cpu.Add(Line(state.Kind, $"{name}, offloaded", Ceil(bytes) * perNode, $"({formula}) × {perNode} ranks/node", state.Source));
            }
            else
                gpu.Add(Line(state.Kind, name, Ceil(bytes), formula, state.Source, state.Phase));
        }

        // 2. DeepSpeed's fp32 gradient partition: 16-bit grads are cast to fp32 for the optimizer step.
        if (layout.Engine == ParallelEngine.DeepSpeed && job.SixteenBitTraining && job.TrainableParameters > 0)
        {
            double perRank = job.TrainableParameters * tpFactor / n;
            string formula = $"4 B × {Num(job.TrainableParameters)}{tpText} / {n}";
            if (layout.ZeroStage == 3 && layout.Offload == Offload.None && perRank > settings.SubGroupSize)
            {
                perRank = settings.SubGroupSize;
                formula = $"4 B × sub_group_size {Num(settings.SubGroupSize)} (stage 3 converts one sub-group at a time)";
            }
            if (layout.Offload != Offload.None)
                cpu.Add(Line(LineKind.Fp32GradientPartition, "fp32 gradient partition, offloaded", Ceil(4 * perRank) * perNode, $"({formula}) × {perNode} ranks/node", DsConfig));
            else
                gpu.Add(Line(LineKind.Fp32GradientPartition, "fp32 gradient partition for the step", Ceil(4 * perRank), formula, DsConfig, Phase.OptimizerStep));
        }

        // 3. Gathered parameters (ZeRO-3 / FSDP) and persistent small tensors.
        AddGathered(job, layout, settings, tpFactor, gpu);

        // 4. Communication buckets.
        AddBuckets(job, layout, settings, tpFactor, gpu);

        // 5. Activations, split by TP (and SP).
        int activationsFrom = gpu.Count;
        foreach (var a in job.Activations)
        {
            long bytes = ActivationSharding.PerRank(a, t, layout.SequenceParallel);
            bool split = bytes != a.Bytes;
            gpu.Add(Line(a.Kind, a.Name, bytes, split ? $"({a.Formula}) / {t}" : a.Formula, a.Source, a.Phase));
        }
        int activationsTo = gpu.Count;

        // 5b. Expert parallelism: one MoE layer's tokens leave for their experts' ranks and come back by all-to-all.
        if (layout.ExpertParallel > 1 && job.ExpertDispatchBytes > 0)
            gpu.Add(Line(LineKind.ExpertAllToAllBuffers, "EP all-to-all buffers (one MoE layer: dispatch send + combine receive)", 2 * job.ExpertDispatchBytes,
                $"2 × {Num(job.ExpertDispatchBytes)} B (tokens × experts per token × hidden, balanced routing)",
                "DeepSpeed AutoEP (autoep.rst: AllToAll token dispatch and combine around grouped experts); the rows a rank " +
                "receives are its experts' input, counted with the MoE activations; backward runs the reverse all-to-alls", Phase.ForwardAndBackward));

        // 6. NCCL communicators and runtime overheads.
        foreach (var (group, ranks) in NcclOverhead.Communicators(layout))
            gpu.Add(Line(LineKind.NcclCommunicator, $"NCCL communicator: {group} ({ranks} ranks)", NcclOverhead.PerCommunicator(ranks),
                "688 MiB per communicator (measured 544 for 2 ranks, 688 for more; the larger is charged)", NcclOverhead.Source));
        gpu.AddRange(job.Overheads);
        var always = Phase.Step;
        if (job.VisionTowerRuns)
        {
            // The tower runs inside the forward, before the first decoder layer: every line held through the whole forward
            // and backward (model states, gathered root unit, runtime) is live then; the activations carry their own
            // moments from the single-GPU ledger (the tower's saved tensors and temporaries, no decoder activation yet).
            always |= Phase.VisionTower;
            for (int i = 0; i < gpu.Count; i++)
                if ((i < activationsFrom || i >= activationsTo) && (gpu[i].Phases & Phase.ForwardAndBackward) == Phase.ForwardAndBackward)
                    gpu[i] = gpu[i] with { Phases = gpu[i].Phases | Phase.VisionTower };
        }

        // 7. CPU: loading the checkpoint before training.
        AddLoad(job, layout, cpu);

        var ledger = new ParallelLedger { Layout = layout, Gpu = gpu, CpuPerNode = cpu, DeepSpeed = settings,
            GpuMoments = job.VisionTowerRuns ? Phases.StepMomentsWithVisionTower : Phases.StepMoments };
        if (job.ReplayedFragmentationBytes is { } replayed && layout.Sharding == Sharding.None && layout.TensorParallel == 1 && layout.Offload == Offload.None)
        {
            // Plain data parallel: every rank runs the single-GPU step on its own micro-batch, so its fragmentation is
            // the replay's (DDP's gradient buckets come on top as their own line).
            ledger = ledger with { Gpu = [.. gpu, Line(LineKind.AllocatorFragmentation, "allocator fragmentation (replayed)", replayed,
                "the single-GPU replay of the same step (each DDP rank runs it unsharded)", "CUDACachingAllocator.cpp (PyTorch 2.x) rules replayed over the step's allocations: Afinado.Planner.Allocator", always)] };
        }
        else if (job.AllocatorReserveFraction > 0)
        {
            long reserve = Ceil(ledger.GpuPeakBytes * job.AllocatorReserveFraction);
            ledger = ledger with { Gpu = [.. gpu, Line(LineKind.AllocatorReserve, "allocator reserve", reserve, $"{job.AllocatorReserveFraction:P0} of the peak (the per-GPU step is not replayed)", "caching-allocator slack, memory.md §5.2 (0.25–6 GiB reserved-but-unallocated)", always)] };
        }
        return ledger;
    }

    /// <summary>
    /// A rank's share of a model state under expert parallelism: the routed experts' part is split over the EP group, and
    /// ZeRO partitions it further over the expert-data-parallel group (DP / EP ranks), so a sharded class still holds 1/DP
    /// of it; an unsharded one (ZeRO-1/2 weights, ZeRO-1 gradients) holds 1/EP of the experts and all of the rest.
    /// </summary>
    private static (double Bytes, string Formula) ExpertParallelShare(ModelStateEntry state, double bytesPerElement, ParallelLayout layout,
        bool sharded, double bytes, string formula)
    {
        int ep = layout.ExpertParallel;
        if (sharded)
            return (bytes, formula + $" (routed experts: /{ep} EP × /{layout.ShardGroup / ep} expert-data-parallel)");
        long dense = state.Elements - state.ExpertElements;
        double perRank = dense + (double)state.ExpertElements / ep;
        return (Math.Ceiling(perRank * bytesPerElement), $"({Num(dense)} + {Num(state.ExpertElements)} routed-expert / {ep} EP) × {bytesPerElement:0.####} B");
    }

    private const string Fsdp1Offload = "torch/distributed/fsdp/_flat_param.py FlatParamHandle.init_flat_param_attributes (offload_params: " +
        "_local_shard.pin_memory() and _cpu_grad = zeros_like(_local_shard).pin_memory() for every flat parameter, frozen ones too)";
    private const string PinnedRounding = "ATen CachingHostAllocator: roundSize = c10::llvm::PowerOf2Ceil(size) before cudaHostAlloc (pytorch #150517, PR #171662)";

    /// <summary>
    /// FSDP1 CPU offload keeps each rank's shard of every flat parameter in pinned host memory, plus a pinned gradient
    /// buffer of the same size; PyTorch's pinned allocator rounds each request up to a power of two.
    /// </summary>
    private static void AddFsdp1PinnedShards(ParallelJob job, ParallelLayout layout, List<LedgerEntry> cpu)
    {
        int n = layout.ShardGroup, perNode = layout.GpusPerNode;
        long pinned = job.FsdpUnitBytes.Sum(u => PinnedBytes((long)Math.Ceiling(u / n)));
        double raw = job.FsdpUnitBytes.Sum(u => Math.Ceiling(u / n));
        string formula = $"Σ over {job.FsdpUnitBytes.Count:N0} flat parameters of PowerOf2Ceil(unit bytes / {n}) = {raw / 1e9:0.###} GB rounded to {pinned / 1e9:0.###} GB, × {perNode} ranks/node";
        cpu.Add(Line(LineKind.FsdpPinnedParameterShards, "FSDP1 pinned parameter shards (_local_shard)", pinned * perNode, formula, Fsdp1Offload + "; " + PinnedRounding));
        cpu.Add(Line(LineKind.FsdpPinnedGradientShards, "FSDP1 pinned gradient shards (_cpu_grad, one per flat parameter)", pinned * perNode, formula, Fsdp1Offload + "; " + PinnedRounding));
    }

    /// <summary>Bytes PyTorch's caching host allocator reserves for a pinned tensor of <paramref name="bytes"/>: the next power of two.</summary>
    public static long PinnedBytes(long bytes) => bytes <= 1 ? bytes : 1L << (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(bytes - 1)));

    private static bool IsOffloaded(StateKind kind, Offload offload) => offload switch
    {
        Offload.Params => true,
        Offload.Optimizer => kind != StateKind.Parameters,
        _ => false,
    };

    private static double TpFactor(ParallelJob job, int t) =>
        t == 1 ? 1 : job.TensorParallelShardableFraction / t + (1 - job.TensorParallelShardableFraction);

    private static void AddGathered(ParallelJob job, ParallelLayout layout, DeepSpeedSettings s, double tpFactor, List<LedgerEntry> gpu)
    {
        if (layout.IsSingleGpu && layout.Engine != ParallelEngine.Fsdp && layout.Sharding != Sharding.Zero3) return;
        double pb = job.GatherBytesPerParameter, gb = job.GradientBytesPerParameter;
        if (layout.Sharding == Sharding.Zero3)
        {
            long live = Math.Min(s.Stage3MaxLiveParameters, job.LargestModuleParameters + s.Stage3PrefetchBucketSize);
            double moduleBytes = job.LargestModuleGatherBytes > 0 ? job.LargestModuleGatherBytes : job.LargestModuleParameters * pb;
            double liveBytes = moduleBytes + (live - job.LargestModuleParameters) * pb;
            gpu.Add(Line(LineKind.Zero3GatheredParameters, "ZeRO-3 gathered parameters (largest module + prefetch bucket)", Ceil(liveBytes * tpFactor),
                $"min(max_live {Num(s.Stage3MaxLiveParameters)}, largest module {Num(job.LargestModuleParameters)} + prefetch {Num(s.Stage3PrefetchBucketSize)}) × {pb:0.####} B",
                DsConfig + "; estimator's 4·largest_layer", Phase.ForwardAndBackward));
            if (job.LargestModuleTrainable > 0)
                gpu.Add(Line(LineKind.Zero3ModuleGradient, "ZeRO-3 full gradient of the largest trainable module", Ceil(job.LargestModuleTrainable * gb * tpFactor),
                    $"{Num(job.LargestModuleTrainable)} × {gb:0.####} B", DsConfig + "; estimator's 4·largest_layer", Phase.BackwardStart | Phase.BackwardEnd));
            long persistent = job.TensorSizes.Where(x => x <= s.Stage3ParamPersistenceThreshold).Sum();
            if (persistent > 0 && layout.ShardGroup > 1)
                gpu.Add(Line(LineKind.Zero3PersistentParameters, "ZeRO-3 persistent small parameters (kept whole)", Ceil(persistent * pb * (1 - 1.0 / layout.ShardGroup)),
                    $"{Num(persistent)} params ≤ threshold {Num(s.Stage3ParamPersistenceThreshold)} × {pb:0.####} B × (1 − 1/{layout.ShardGroup})",
                    DsConfig + " stage3_param_persistence_threshold"));
        }
        else if (layout.Sharding is Sharding.FsdpFull or Sharding.FsdpHybrid)
        {
            double unit = job.LargestWrapUnitGatherBytes > 0 ? job.LargestWrapUnitGatherBytes : job.LargestWrapUnitParameters * pb;
            // FSDP1 prefetches, in backward, the unit that finished its forward just before the current one
            // (_ExecOrderData.get_handle_to_backward_prefetch: handles_post_forward_order[index - 1], limit 1). With PEFT's
            // wrap every LoRA factor is a unit nested in its decoder layer and finishes first, so a layer's prefetch target is
            // its own last LoRA factor: one decoder layer is gathered at a time. (The previous layer can be fetched at the tail
            // of a layer's backward, when its recomputed activations are already freed.)
            if (layout.FsdpVersion == 1 && job.AdapterUnitsNested)
            {
                gpu.Add(Line(LineKind.FsdpGatheredLayers, "FSDP gathered layer unit (current; the backward prefetch targets a nested LoRA unit)", Ceil(unit * tpFactor),
                    $"1 × largest decoder layer {Num(job.LargestWrapUnitParameters)} params = {unit / 1e6:0.#} MB",
                    "torch/distributed/fsdp/_exec_order_utils.py get_handle_to_backward_prefetch (post-forward order, limit 1) with " +
                    "PEFT fsdp_auto_wrap_policy (lora_A / lora_B as units inside each layer)", Phase.ForwardAndBackward));
                // Allocated counts a unit as freed when FSDP frees it on the CPU, but its block returns to the all-gather
                // stream's pool only once the GPU has finished with it; the next unit's all-gather, issued meanwhile,
                // takes a second block. That block is reserved, not allocated (it shows in nvidia-smi, not in
                // max_memory_allocated), and only the all-gather stream can reuse it.
                gpu.Add(Line(LineKind.AllGatherPoolBlock, "allocator reserve: FSDP all-gather pool's second layer block", Ceil(unit * tpFactor),
                    $"1 × largest decoder layer = {unit / 1e6:0.#} MB",
                    "FSDP limit_all_gathers (\"GPU memory usage from only two consecutive FSDP instances\"); CUDA caching allocator: " +
                    "a block freed after record_stream is reusable only after the recorded stream passes it, and only by its own stream"));
            }
            else
                gpu.Add(Line(LineKind.FsdpGatheredLayers, "FSDP gathered layer units (current + backward prefetch)", Ceil(2 * unit * tpFactor),
                    $"2 × largest decoder layer {Num(job.LargestWrapUnitParameters)} params = 2 × {unit / 1e6:0.#} MB",
                    "PyTorch FSDP BACKWARD_PRE keeps the next unit gathered (ecosystem.md §6.3)", Phase.ForwardAndBackward));
            long largestTrainable = job.LargestWrapUnitTrainable;
            if (layout.ShardEmbeddingsSeparately)
            {
                // torchtune shard_model: fully_shard(tok_embeddings), fully_shard(output) with reshard_after_forward=True, then
                // the root (final norm only) with reshard_after_forward=False. The head is gathered for the logits and again
                // when backward starts; the embedding only for its gradient at the end of backward (counted with that moment).
                const string tt = "torchtune training/_distributed.py shard_model + custom_sharded_layers ['tok_embeddings', 'output'] (llama3_1/70B_full.yaml)";
                double rest = job.RootUnitGatherBytes - job.EmbeddingGatherBytes - job.HeadGatherBytes;
                if (rest > 0)
                    gpu.Add(Line(LineKind.FsdpRootUnit, "FSDP root unit (final norm) gathered", Ceil(rest * tpFactor), $"{rest / 1e6:0.###} MB", tt + "; root keeps reshard_after_forward=False", Phase.ForwardAndBackward));
                if (job.HeadGatherBytes > 0)
                    gpu.Add(Line(LineKind.FsdpHeadUnit, "FSDP head unit (output) gathered", Ceil(job.HeadGatherBytes * tpFactor), $"{job.HeadGatherBytes / 1e6:0.#} MB", tt, Phase.Forward | Phase.BackwardStart));
                if (job.EmbeddingGatherBytes > 0)
                    gpu.Add(Line(LineKind.FsdpEmbeddingUnit, "FSDP embedding unit (tok_embeddings) gathered", Ceil(job.EmbeddingGatherBytes * tpFactor), $"{job.EmbeddingGatherBytes / 1e6:0.#} MB", tt, Phase.BackwardEnd));
                largestTrainable = Math.Max(job.LargestLayerTrainable, Math.Max(job.EmbeddingTrainable, job.HeadTrainable));
            }
            else if (job.RootUnitGatherBytes > 0)
                gpu.Add(Line(LineKind.FsdpRootUnit, "FSDP root unit (embeddings, norm, head) gathered", Ceil(job.RootUnitGatherBytes * tpFactor),
                    $"{job.RootUnitGatherBytes / 1e6:0.#} MB in 16-bit", "FSDP does not reshard the root after forward: backward starts with it", Phase.ForwardAndBackward));
            if (layout.Offload == Offload.Params)
                gpu.Add(Line(LineKind.FsdpOffloadStagedShard, "FSDP offload: shard staged on the GPU for the all-gather", Ceil(unit * tpFactor / layout.ShardGroup),
                    $"{unit / 1e6:0.#} MB / {layout.ShardGroup}", "FSDP CPUOffload copies the CPU shard to the GPU before all-gathering it", Phase.ForwardAndBackward));
            if (largestTrainable > 0)
                gpu.Add(Line(LineKind.FsdpUnitGradient, "FSDP unsharded gradient of one unit", Ceil(largestTrainable * gb * tpFactor),
                    $"{Num(largestTrainable)} × {gb:0.####} B", "FSDP reduce-scatters each unit's full gradient", Phase.BackwardStart | Phase.BackwardEnd));
        }
        else if (layout.Sharding == Sharding.FsdpGradOp && job.LargestWrapUnitTrainable > 0)
            gpu.Add(Line(LineKind.FsdpUnitGradient, "FSDP unsharded gradient of one unit", Ceil(job.LargestWrapUnitTrainable * gb * tpFactor),
                $"{Num(job.LargestWrapUnitTrainable)} × {gb:0.####} B", "FSDP reduce-scatters each unit's full gradient", Phase.BackwardStart | Phase.BackwardEnd));
    }

    private static void AddBuckets(ParallelJob job, ParallelLayout layout, DeepSpeedSettings s, double tpFactor, List<LedgerEntry> gpu)
    {
        // DeepSpeed allocates its buckets even on one GPU (ZeRO-Offload); plain single-GPU training has none.
        if (job.TrainableParameters == 0 || (layout.IsSingleGpu && layout.Engine != ParallelEngine.DeepSpeed)) return;
        double gb = job.GradientBytesPerParameter;
        switch (layout.ZeroStage, layout.Engine)
        {
            case (0, ParallelEngine.DataParallel):
                gpu.Add(Line(LineKind.DdpReducerBuckets, "DDP reducer buckets (a copy of every gradient)", Ceil(job.TrainableParameters * gb * tpFactor),
                    $"{Num(job.TrainableParameters)} × {gb:0.####} B (gradient_as_bucket_view=False, the default)",
                    "PyTorch DistributedDataParallel reducer", Phase.BackwardStart | Phase.BackwardEnd));
                break;
            case (1 or 2, ParallelEngine.DeepSpeed):
                int copies = s.OverlapComm ? 2 : 1;
                gpu.Add(Line(LineKind.ZeroReduceBucket, "ZeRO reduce bucket", Ceil(copies * s.ReduceBucketSize * gb),
                    $"{copies} × reduce_bucket_size {Num(s.ReduceBucketSize)} × {gb:0.####} B", DsConfig, Phase.BackwardStart | Phase.BackwardEnd));
                gpu.Add(Line(LineKind.ZeroAllGatherBucket, "ZeRO all-gather bucket (after the step)", Ceil(s.AllgatherBucketSize * job.GatherBytesPerParameter),
                    $"allgather_bucket_size {Num(s.AllgatherBucketSize)} × {job.GatherBytesPerParameter:0.####} B",
                    DsConfig + "; EleutherAI cookbook counts it too (memory.md §1.1)", Phase.OptimizerStep));
                break;
            case (3, ParallelEngine.DeepSpeed) when s.ContiguousGradients:
                gpu.Add(Line(LineKind.ZeroReduceBucket, "ZeRO-3 reduce bucket (contiguous IPG buffer)", Ceil(s.ReduceBucketSize * gb),
                    $"reduce_bucket_size {Num(s.ReduceBucketSize)} × {gb:0.####} B", DsConfig, Phase.BackwardStart | Phase.BackwardEnd));
                break;
        }
    }

    private static void AddLoad(ParallelJob job, ParallelLayout layout, List<LedgerEntry> cpu)
    {
        // zero.Init / fsdp_cpu_ram_efficient_loading materialise the checkpoint once per node (rank 0 loads, others wait);
        // otherwise every process on the node loads its own full copy.
        int copies = layout.GathersParameters ? 1 : layout.GpusPerNode;
        cpu.Add(Line(LineKind.CheckpointLoad, "checkpoint load (transient, before training)", Ceil(job.Parameters * job.LoadBytesPerParameter * copies),
            $"{Num(job.Parameters)} × {job.LoadBytesPerParameter:0.####} B × {copies} cop{(copies == 1 ? "y" : "ies")} per node",
            layout.GathersParameters ? "zero.Init / fsdp_cpu_ram_efficient_loading: one copy per node"
                : "each process loads the full model first (DeepSpeed memory.rst: params × n_gpus per node at load)",
            Phase.ModelLoad));
    }

    private static long Ceil(double bytes) => (long)Math.Ceiling(bytes);

    /// <summary>A ledger line in the order this file reads best: what, how many bytes, how, from where, then when (the whole step unless narrower).</summary>
    private static LedgerEntry Line(LineKind kind, string name, long bytes, string formula, string source, Phase phases = Phase.Step) =>
        new(kind, name, phases, bytes, formula, source);

    internal static string Num(long x) => x >= 10_000_000
        ? x.ToString("0.###e0", CultureInfo.InvariantCulture)
        : x.ToString("N0", CultureInfo.InvariantCulture);
}
