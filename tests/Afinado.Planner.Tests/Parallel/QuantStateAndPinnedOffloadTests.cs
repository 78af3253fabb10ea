using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Parallel;

/// <summary>
/// Two engine mechanisms behind the PEFT Llama-2-70B QLoRA + FSDP rows: bitsandbytes keeps its block constants
/// (QuantState) out of the parameters, so sharding and offload leave them whole on every GPU; FSDP1 CPU offload pins
/// a parameter shard and a gradient shard per flat parameter, each rounded up to a power of two by PyTorch's pinned allocator.
/// </summary>
public class QuantStateAndPinnedOffloadTests
{
    private const string L70 = "meta-llama/Llama-2-70b-hf";

    private static Job QLora(QuantLibrary lib) => Bridged.Train(TrainingMethod.QLora) with { WeightsDtype = DType.Nf4Dq, QuantLibrary = lib };

    private static long QuantizedParameters(ParallelJob job) => job.ModelStates.Single(s => s.Kind == LineKind.WeightsFrozenQuantizedCodes).Elements;

    private static LedgerEntry Line(IEnumerable<LedgerEntry> lines, LineKind kind) => lines.Single(l => l.Kind == kind);

    [Fact]
    public void Bitsandbytes_constants_stay_whole_on_every_gpu_while_the_codes_are_sharded_and_offloaded()
    {
        var job = Bridged.Job(L70, QLora(QuantLibrary.BitsAndBytes));
        long q = QuantizedParameters(job);
        double constants = q * (DType.Nf4Dq.Bytes() - 0.5);
        Assert.Equal(q * (1.0 / 64 + 4.0 / (64 * 256)), constants, 1e3);
        foreach (var offload in new[] { Offload.None, Offload.Params })
        {
            var ledger = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull, Offload = offload });
            var quantState = Line(ledger.Gpu, LineKind.QuantizationConstants);
            Assert.Equal(constants, quantState.Bytes, 1.0);
            Assert.DoesNotContain(ledger.CpuPerNode, l => l.Kind == LineKind.QuantizationConstants);
        }
        var zero3 = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.Zero3 });
        Assert.Equal(constants, Line(zero3.Gpu, LineKind.QuantizationConstants).Bytes, 1.0);
        // The codes alone are sharded: 4 bits per parameter over 2 ranks.
        var noOffload = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull });
        Assert.Equal(q * 0.5 / 2, Line(noOffload.Gpu, LineKind.WeightsFrozenQuantizedCodes).Bytes, 1.0);
    }

    [Fact]
    public void Torchao_nf4_shards_its_scalers_with_the_codes()
    {
        var job = Bridged.Job(L70, QLora(QuantLibrary.TorchAo));
        Assert.DoesNotContain(job.ModelStates, s => s.Kind == LineKind.QuantizationConstants);
        var states = job.ModelStates.Single(s => s.Kind == LineKind.WeightsFrozenQuantized);
        var ledger = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull });
        Assert.Equal(states.Bytes / 2.0, Line(ledger.Gpu, LineKind.WeightsFrozenQuantized).Bytes, 1.0);
    }

    [Theory]
    [InlineData(1L, 1L)]
    [InlineData(2L, 2L)]
    [InlineData(3L, 4L)]
    [InlineData(213_925_888L, 268_435_456L)]   // one Llama-2-70B NF4 decoder layer shard over 2 ranks → 256 MiB
    [InlineData(524_296_192L, 536_870_912L)]   // its root unit (embeddings + head, bf16) shard → 512 MiB
    [InlineData(536_870_912L, 536_870_912L)]
    public void Pinned_host_allocations_round_up_to_a_power_of_two(long bytes, long pinned) =>
        Assert.Equal(pinned, ParallelMemory.PinnedBytes(bytes));

    [Fact]
    public void Fsdp1_offload_pins_a_parameter_and_a_gradient_shard_per_flat_parameter()
    {
        var job = Bridged.Job(L70, QLora(QuantLibrary.BitsAndBytes));
        var layout = new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull, Offload = Offload.Params };
        var ledger = ParallelMemory.Plan(job, layout);
        // 80 decoder layers + the root + one unit per LoRA factor (PEFT's wrap policy): 2 × 7 × 80 adapters.
        Assert.Equal(80 + 1 + 2 * 7 * 80, job.FsdpUnitBytes.Count);
        long perRank = job.FsdpUnitBytes.Sum(u => ParallelMemory.PinnedBytes((long)Math.Ceiling(u / 2)));
        Assert.Equal(2 * perRank, Line(ledger.CpuPerNode, LineKind.FsdpPinnedParameterShards).Bytes);
        Assert.Equal(2 * perRank, Line(ledger.CpuPerNode, LineKind.FsdpPinnedGradientShards).Bytes);
        // The decoder layers alone: 80 × 256 MiB per buffer and rank.
        Assert.True(perRank >= 80L * (256L << 20));
        // The pinned buffers replace the plain offloaded weights and gradients (no double count); the optimizer stays.
        Assert.DoesNotContain(ledger.CpuPerNode, l => l.Kind is LineKind.WeightsFrozenQuantizedCodes or LineKind.Gradients);
        Assert.Contains(ledger.CpuPerNode, l => l.Kind == LineKind.OptimizerState);
        // FSDP2 (fully_shard) has no flat parameters: the generic offloaded states are kept instead.
        var fsdp2 = ParallelMemory.Plan(job, layout with { FsdpVersion = 2 });
        Assert.DoesNotContain(fsdp2.CpuPerNode, l => l.Kind == LineKind.FsdpPinnedParameterShards);
        Assert.Contains(fsdp2.CpuPerNode, l => l.Kind == LineKind.WeightsFrozenQuantizedCodes);
    }

    [Fact]
    public void Fsdp_version_2_needs_an_fsdp_layout() =>
        Assert.Equal(LayoutParameters.FsdpVersion, Assert.Throws<InputError>(() => new ParallelLayout { Gpus = 2, Sharding = Sharding.Zero3, FsdpVersion = 2 }.Validate()).Parameter);
}

/// <summary>torchtune's custom_sharded_layers: the embedding and head as FSDP units of their own instead of a root gathered all step.</summary>
public class SeparatelyShardedEmbeddingTests
{
    private const string L70 = "meta-llama/Llama-3.1-70B";

    [Fact]
    public void Embedding_and_head_units_replace_the_root_kept_gathered_for_the_whole_step()
    {
        var job = Bridged.Job(L70, Bridged.Train(TrainingMethod.Full) with { Precision = Precision.Bf16 });
        var layout = new ParallelLayout { Gpus = 8, Sharding = Sharding.FsdpFull };
        var root = ParallelMemory.Plan(job, layout);
        var split = ParallelMemory.Plan(job, layout with { ShardEmbeddingsSeparately = true });
        double vocabTimesHidden = 128_256.0 * 8192;
        Assert.Equal(2 * 2 * vocabTimesHidden, root.Gpu.Single(l => l.Kind == LineKind.FsdpRootUnit).Bytes, 1e5);
        var head = split.Gpu.Single(l => l.Kind == LineKind.FsdpHeadUnit);
        var embedding = split.Gpu.Single(l => l.Kind == LineKind.FsdpEmbeddingUnit);
        Assert.Equal(2 * vocabTimesHidden, head.Bytes, 1.0);
        Assert.Equal(2 * vocabTimesHidden, embedding.Bytes, 1.0);
        // Never both at once: the head at the logits and backward start, the embedding at the end of backward.
        Assert.Equal(Phase.None, head.Phases & embedding.Phases);
        // The largest unsharded gradient is one 16-bit vocab matrix, not the whole root.
        Assert.Equal(2 * vocabTimesHidden, split.Gpu.Single(l => l.Kind == LineKind.FsdpUnitGradient).Bytes, 1.0);
        Assert.Equal(2 * 2 * vocabTimesHidden, root.Gpu.Single(l => l.Kind == LineKind.FsdpUnitGradient).Bytes, 1e5);
        // At the end of backward the root's 2·V·h·2 B and its gradient give way to the embedding and its gradient.
        double saved = MemoryPeak.At(root.Gpu, Phase.BackwardEnd) - MemoryPeak.At(split.Gpu, Phase.BackwardEnd);
        Assert.True(saved > 3.9 * vocabTimesHidden, $"saved {saved:N0} B at the end of backward");
    }

    [Fact]
    public void Separate_embedding_units_need_an_fsdp_full_layout() =>
        Assert.Equal(LayoutParameters.ShardEmbeddingsSeparately, Assert.Throws<InputError>(() =>
            new ParallelLayout { Gpus = 8, Sharding = Sharding.Zero3, ShardEmbeddingsSeparately = true }.Validate()).Parameter);
}

/// <summary>FSDP MixedPrecision shards the frozen base in the dtype it was loaded in, gathering 16-bit copies.</summary>
public class FsdpShardedDtypeTests
{
    [Fact]
    public void A_base_loaded_in_fp32_is_sharded_at_4_bytes_but_gathered_at_2()
    {
        var job = Bridged.Job("meta-llama/Llama-2-70b-hf", Bridged.Train(TrainingMethod.Lora));
        var layout = new ParallelLayout { Gpus = 8, Sharding = Sharding.FsdpFull };
        var bf16 = ParallelMemory.Plan(job, layout);
        var fp32 = ParallelMemory.Plan(job, layout with { FsdpShardedDtype = DType.Fp32 });
        long frozen = job.ModelStates.Single(s => s.FrozenFloatWeights).Elements;
        Assert.Equal(frozen * 2.0 / 8, bf16.Gpu.Single(l => l.Kind == LineKind.WeightsFrozen).Bytes, 1.0);
        Assert.Equal(frozen * 4.0 / 8, fp32.Gpu.Single(l => l.Kind == LineKind.WeightsFrozen).Bytes, 1.0);
        // The gathered units stay in the 16-bit param_dtype.
        Assert.Equal(bf16.Gpu.Single(l => l.Kind == LineKind.FsdpGatheredLayers).Bytes, fp32.Gpu.Single(l => l.Kind == LineKind.FsdpGatheredLayers).Bytes);
    }

    [Fact]
    public void The_sharded_dtype_is_an_fsdp_setting() =>
        Assert.Equal(LayoutParameters.FsdpShardedDtype, Assert.Throws<InputError>(() =>
            new ParallelLayout { Gpus = 8, Sharding = Sharding.Zero3, FsdpShardedDtype = DType.Fp32 }.Validate()).Parameter);
}

/// <summary>
/// FSDP1 prefetches, in backward, the unit whose forward finished just before the current one's. PEFT wraps each LoRA
/// factor as a unit inside its decoder layer, so a layer's prefetch target is its own LoRA factor and one decoder layer
/// is gathered at a time; without nested adapter units (full finetuning) and under FSDP2 the next layer is prefetched.
/// </summary>
public class FsdpBackwardPrefetchTests
{
    private static double Gathered(ParallelLedger l) => l.Gpu.Single(g => g.Kind == LineKind.FsdpGatheredLayers).Bytes;

    [Fact]
    public void Fsdp1_with_nested_lora_units_gathers_one_layer_full_finetuning_and_fsdp2_two()
    {
        var lora = Bridged.Job("meta-llama/Llama-2-70b-hf", Bridged.Train(TrainingMethod.Lora));
        var full = Bridged.Job("meta-llama/Llama-2-70b-hf", Bridged.Train(TrainingMethod.Full));
        var fsdp1 = new ParallelLayout { Gpus = 8, Sharding = Sharding.FsdpFull };
        double layer = lora.LargestWrapUnitGatherBytes;
        Assert.True(lora.AdapterUnitsNested);
        Assert.False(full.AdapterUnitsNested);
        Assert.Equal(layer, Gathered(ParallelMemory.Plan(lora, fsdp1)), 1.0);
        Assert.Equal(2 * layer, Gathered(ParallelMemory.Plan(lora, fsdp1 with { FsdpVersion = 2 })), 1.0);
        Assert.Equal(2 * full.LargestWrapUnitGatherBytes, Gathered(ParallelMemory.Plan(full, fsdp1)), 1.0);
        Assert.Contains("get_handle_to_backward_prefetch", ParallelMemory.Plan(lora, fsdp1).Gpu.Single(g => g.Kind == LineKind.FsdpGatheredLayers).Source);
    }

    [Fact]
    public void The_second_layer_block_is_reserved_not_allocated()
    {
        var lora = Bridged.Job("meta-llama/Llama-2-70b-hf", Bridged.Train(TrainingMethod.Lora));
        var fsdp1 = ParallelMemory.Plan(lora, new ParallelLayout { Gpus = 8, Sharding = Sharding.FsdpFull });
        var fsdp2 = ParallelMemory.Plan(lora, new ParallelLayout { Gpus = 8, Sharding = Sharding.FsdpFull, FsdpVersion = 2 });
        var reserve = fsdp1.Gpu.Single(g => g.Kind == LineKind.AllGatherPoolBlock);
        Assert.Equal(lora.LargestWrapUnitGatherBytes, reserve.Bytes, 1.0);
        Assert.Equal(Phase.Step, reserve.Phases);
        Assert.DoesNotContain(fsdp2.Gpu, g => g.Kind == LineKind.AllGatherPoolBlock);
        // nvidia-smi (everything) is the same as counting two gathered layers; only the allocated figure drops by a layer.
        long allocated(ParallelLedger l) => l.GpuPeakBytes - (long)l.Gpu.Where(g => g.Kind is LineKind.AllocatorReserve or LineKind.AllGatherPoolBlock).Sum(g => g.Bytes);
        Assert.Equal(allocated(fsdp2) - (long)lora.LargestWrapUnitGatherBytes, allocated(fsdp1), (long)(0.001 * allocated(fsdp1)));
    }
}

/// <summary>FSDP1 plans also say how high nvidia-smi may read, from the reserved/allocated ratio measured on FSDP1 runs.</summary>
public class Fsdp1NvidiaSmiUpperTests
{
    [Fact]
    public void Fsdp1_plans_give_an_upper_nvidia_smi_figure_other_engines_do_not()
    {
        var job = Bridged.Job("meta-llama/Llama-2-70b-hf", Bridged.Train(TrainingMethod.QLora, batch: 2));
        var fsdp1 = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull });
        long runtime = (long)fsdp1.Gpu.Where(l => l.Kind is LineKind.CudaContext or LineKind.NcclCommunicator).Sum(l => l.Bytes);
        Assert.Equal((long)Math.Ceiling(fsdp1.GpuAllocatedPeakBytes * (10.24 / 8.28)) + runtime, fsdp1.GpuNvidiaSmiUpperBytes);
        Assert.True(fsdp1.GpuNvidiaSmiUpperBytes > fsdp1.GpuPeakBytes);
        // With CPU offload the published runs read up to 1.32 × the plan's peak, more than the allocated ratio gives.
        var offload = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull, Offload = Offload.Params });
        long byRatio = (long)Math.Ceiling(offload.GpuAllocatedPeakBytes * (10.24 / 8.28)) + runtime;
        Assert.Equal((long)Math.Ceiling(offload.GpuPeakBytes * Afinado.Planner.Parallel.ParallelLedger.Fsdp1OffloadPublishedOverPredicted), offload.GpuNvidiaSmiUpperBytes);
        Assert.True(offload.GpuNvidiaSmiUpperBytes > byRatio);
        Assert.True(fsdp1.GpuAllocatedPeakBytes < fsdp1.GpuPeakBytes - runtime);
        Assert.Null(ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.Zero3 }).GpuNvidiaSmiUpperBytes);
        Assert.Null(ParallelMemory.Plan(job, new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull, FsdpVersion = 2 }).GpuNvidiaSmiUpperBytes);
    }
}
