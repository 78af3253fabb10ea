using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Parallel;

public class ParallelSearchTests
{
    private const long H100 = 80_000_000_000, Rtx4090 = 24_000_000_000;

    private const string L8B = "meta-llama/Llama-3.1-8B", L70B = "meta-llama/Llama-2-70b-hf";

    /// <summary>A grid of jobs from small to far beyond one GPU.</summary>
    public static IEnumerable<(string Name, ParallelJob Job)> Jobs()
    {
        foreach (var m in new[] { L8B, L70B })
            foreach (var method in new[] { TrainingMethod.Full, TrainingMethod.Lora, TrainingMethod.QLora })
                foreach (int b in new[] { 1, 8 })
                    foreach (bool ckpt in new[] { true, false })
                        yield return ($"{m} {method} b={b} ckpt={ckpt}", Bridged.Job(m, Bridged.Train(method, b, ckpt)));
    }

    [Fact]
    public void More_gpus_never_make_a_job_stop_fitting()
    {
        int checkedPairs = 0;
        foreach (var (name, job) in Jobs())
        {
            foreach (var family in Enum.GetValues<EngineFamily>())
                foreach (long capacity in new[] { H100, Rtx4090 })
                    foreach (long? cpu in new long?[] { null, 64L << 30, 100L << 30, 256L << 30 })
                    {
                        bool fitsBefore = false;
                        for (int n = 2; n <= 16; n++)
                        {
                            bool fits = ParallelSearch.LeastCommunication(job, n, 1, capacity, cpu, family).Chosen is not null;
                            Assert.False(fitsBefore && !fits, $"{name} {family} CPU {cpu}: fits {n - 1} GPUs but not {n}");
                            fitsBefore = fits;
                            checkedPairs++;
                        }
                    }
        }
        Assert.True(checkedPairs > 2000);
    }

    [Fact]
    public void When_no_layout_fits_on_all_gpus_the_search_runs_on_fewer()
    {
        // Llama-2-70B QLoRA on 24 GB cards with 100 GiB of CPU RAM: on 2 GPUs FSDP full + CPU offload fits (2 ranks pin
        // 256 MiB buffers per layer); on 3 GPUs neither the unoffloaded layouts (GPU memory) nor offload (3 ranks pin the
        // same power-of-two buffers: 1.5x the CPU RAM) fit, so the search runs on 2 of the 3.
        // Plain NF4 (4.5 bits): the scenario was measured out with it; double quantization leaves more room.
        var job = Bridged.Job(L70B, Bridged.Train(TrainingMethod.QLora) with { WeightsDtype = DType.Nf4 });
        long cpu = 100L << 30;
        var two = ParallelSearch.LeastCommunication(job, 2, 1, Rtx4090, cpu, EngineFamily.Fsdp);
        Assert.False(two.UsesFewerGpus);
        Assert.Equal((Sharding.FsdpFull, Offload.Params), (two.Chosen!.Layout.Sharding, two.Chosen.Layout.Offload));
        var three = ParallelSearch.LeastCommunication(job, 3, 1, Rtx4090, cpu, EngineFamily.Fsdp);
        Assert.True(three.UsesFewerGpus);
        Assert.Equal(2, three.Chosen!.Layout.Gpus);
        Assert.Equal(3, three.Gpus);
        Assert.All(three.Ranked.Where(o => o.Layout.Gpus == 3), o => Assert.False(o.Fits));
        var offload3 = three.Ranked.Single(o => o.Layout.Gpus == 3 && o.Layout.Offload == Offload.Params);
        Assert.True(offload3.FitsGpu && !offload3.FitsCpu);
        Assert.True(offload3.Ledger.CpuBytesPerNode > two.Chosen.Ledger.CpuBytesPerNode);
    }

    [Fact]
    public void Per_gpu_peak_of_each_sharded_layout_never_grows_with_more_gpus()
    {
        var job = Bridged.Job(L70B, Bridged.Train(TrainingMethod.Full));
        foreach (var sharding in new[] { Sharding.Zero1, Sharding.Zero2, Sharding.Zero3, Sharding.FsdpFull, Sharding.FsdpGradOp })
        {
            long previous = long.MaxValue;
            for (int n = 3; n <= 64; n++)
            {
                long peak = ParallelMemory.Plan(job, new ParallelLayout { Gpus = n, Sharding = sharding }).GpuPeakBytes;
                Assert.True(peak <= previous, $"{sharding}: {n} GPUs need {peak} B per GPU, more than {n - 1}");
                previous = peak;
            }
        }
    }

    [Fact]
    public void A_job_that_fits_one_gpu_is_never_sent_to_zero3_or_offload()
    {
        // Running on N ranks adds what a single process does not have: a NCCL communicator (≤ 688 MiB) and the
        // gradient buckets. A job that fits one GPU with that much headroom must stay on DDP/ZeRO-1/ZeRO-2.
        int fitting = 0;
        foreach (var (name, job) in Jobs())
        {
            long single = ParallelMemory.Plan(job, ParallelLayout.SingleGpu).GpuPeakBytes;
            foreach (long capacity in new[] { H100, Rtx4090 })
            {
                if (single + (2L << 30) > capacity) continue;
                fitting++;
                foreach (int n in new[] { 2, 4, 8 })
                    foreach (var family in Enum.GetValues<EngineFamily>())
                    {
                        var chosen = ParallelSearch.LeastCommunication(job, n, 1, capacity, null, family).Chosen;
                        Assert.NotNull(chosen);
                        Assert.False(chosen.Layout.GathersParameters, $"{name} fits 1 GPU but was sent to {chosen.Layout.Describe()}");
                        Assert.Equal(Offload.None, chosen.Layout.Offload);
                    }
            }
        }
        Assert.True(fitting >= 4);
    }

    [Fact]
    public void Least_communication_prefers_no_sharding_then_zero_stages_then_offload()
    {
        var job = Bridged.Job(L70B, Bridged.Train(TrainingMethod.Full));
        var result = ParallelSearch.LeastCommunication(job, 8, 1, H100, null);
        Assert.Equal(
            [Sharding.None, Sharding.Zero1, Sharding.Zero2, Sharding.Zero3, Sharding.Zero2, Sharding.Zero3, Sharding.Zero3],
            ParallelSearch.Candidates(8, 1, EngineFamily.DeepSpeed).Select(l => l.Sharding));
        // 70B full finetuning: 16 B/param = 1.1 TB of model states; 8 × 80 GB cannot hold them without offload.
        Assert.NotNull(result.Chosen);
        Assert.Equal(Sharding.Zero3, result.Chosen.Layout.Sharding);
        Assert.NotEqual(Offload.None, result.Chosen.Layout.Offload);
        // The ranking lists fitting options first, then the rest by peak.
        Assert.Equal(result.Chosen, result.Ranked[0]);
        var rest = result.Ranked.Where(o => !o.Fits).Select(o => o.Ledger.GpuPeakBytes).ToList();
        Assert.Equal(rest.Order(), rest);
    }

    [Fact]
    public void Smallest_gpu_count_is_the_first_count_any_layout_fits()
    {
        var job = Bridged.Job(L70B, Bridged.Train(TrainingMethod.Full));
        // 256 GB of RAM per node loads the 138 GB checkpoint once (zero.Init) but cannot hold 16 B/param of offloaded
        // states for 69B parameters on a few nodes, so ZeRO-3 on GPUs alone must carry 16·69B/N + activations.
        const long cpu = 256_000_000_000;
        var result = ParallelSearch.SmallestGpuCount(job, H100, cpuBytesPerNode: cpu, gpusPerNode: 8);
        Assert.NotNull(result);
        Assert.Equal(Sharding.Zero3, result.Chosen!.Layout.Sharding);
        var counts = ParallelSearch.GpuCounts(8, 1024).Select(c => c.Gpus).ToList();
        int previous = counts[counts.IndexOf(result.Gpus) - 1];
        Assert.Null(ParallelSearch.LeastCommunication(job, previous, Math.Max(1, previous / 8), H100, cpu).Chosen);
        // ZeRO-3 model states alone need 16 B × 69B params / N ≤ 80 GB, so at least 14 GPUs: two nodes of 8.
        Assert.True(result.Gpus >= 16);

        var lora8B = Bridged.Job(L8B, Bridged.Train(TrainingMethod.Lora, checkpointing: false));
        var one = ParallelSearch.SmallestGpuCount(lora8B, H100, null);
        Assert.Equal(1, one!.Gpus);
        Assert.Equal(Sharding.None, one.Chosen!.Layout.Sharding);
    }

    [Fact]
    public void Gpu_counts_respect_nodes_and_tensor_parallelism()
    {
        Assert.Equal([(1, 1), (2, 1), (4, 1), (8, 1), (16, 2), (24, 3)], ParallelSearch.GpuCounts(8, 24));
        Assert.Equal([(2, 1), (4, 1), (8, 1), (16, 2)], ParallelSearch.GpuCounts(8, 16, tensorParallel: 2));
        Assert.Equal([(1, 1), (2, 1), (6, 1), (12, 2)], ParallelSearch.GpuCounts(6, 12));
    }
}
