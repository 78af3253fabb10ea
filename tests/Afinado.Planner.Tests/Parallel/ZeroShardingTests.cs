using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Tests.Parallel;

public class ZeroShardingTests
{
    private static ParallelJob StatesOnly(long psi, double k = 12) => new()
    {
        Parameters = psi,
        TrainableParameters = psi,
        ModelStates = ModelStateEntry.MixedPrecisionAdam(psi, psi, k),
        // The paper's figure counts model states alone: no engine buffers.
        SixteenBitTraining = false,
    };

    /// <summary>The lines of <see cref="ModelStateEntry.MixedPrecisionAdam"/>'s states.</summary>
    private static double ModelStateBytes(ParallelLedger l) =>
        l.Gpu.Where(g => g.Kind is LineKind.Weights or LineKind.Gradients or LineKind.OptimizerState).Sum(g => g.Bytes);

    [Theory]
    [InlineData(Sharding.None, 120.0)]
    [InlineData(Sharding.Zero1, 31.4)]
    [InlineData(Sharding.Zero2, 16.6)]
    [InlineData(Sharding.Zero3, 1.9)]
    public void Zero_paper_figure_1_for_7_5B_parameters_on_64_GPUs(Sharding sharding, double expectedGb)
    {
        var layout = new ParallelLayout { Gpus = 64, Nodes = 8, Sharding = sharding }.Validate();
        var ledger = ParallelMemory.Plan(StatesOnly(7_500_000_000), layout);
        Assert.Equal(expectedGb, ModelStateBytes(ledger) / 1e9, 1);
    }

    [Fact]
    public void Zero_paper_closed_forms_hold_for_any_degree()
    {
        const long psi = 1_000_000_000;
        foreach (int nd in new[] { 2, 3, 8, 100 })
        {
            double Bytes(Sharding s) => ModelStateBytes(ParallelMemory.Plan(StatesOnly(psi), new ParallelLayout { Gpus = nd, Sharding = s }));
            Assert.Equal(4.0 * psi + 12.0 * psi / nd, Bytes(Sharding.Zero1), 3.0); // each line rounds up to whole bytes
            Assert.Equal(2.0 * psi + 14.0 * psi / nd, Bytes(Sharding.Zero2), 3.0);
            Assert.Equal(16.0 * psi / nd, Bytes(Sharding.Zero3), 3.0);
        }
    }

    [Fact]
    public void Fsdp_strategies_shard_like_their_zero_twins()
    {
        const long psi = 1_000_000_000;
        double Bytes(ParallelLayout l) => ModelStateBytes(ParallelMemory.Plan(StatesOnly(psi), l));
        Assert.Equal(Bytes(new() { Gpus = 8, Sharding = Sharding.Zero3 }), Bytes(new() { Gpus = 8, Sharding = Sharding.FsdpFull }));
        Assert.Equal(Bytes(new() { Gpus = 8, Sharding = Sharding.Zero2 }), Bytes(new() { Gpus = 8, Sharding = Sharding.FsdpGradOp }));
        // Hybrid: full shard over the 4 GPUs of a node, replicated over the 2 nodes = ZeRO-3 over 4.
        Assert.Equal(Bytes(new() { Gpus = 4, Sharding = Sharding.Zero3 }), Bytes(new() { Gpus = 8, Nodes = 2, Sharding = Sharding.FsdpHybrid }));
    }

    [Fact]
    public void Optimizer_offload_moves_gradients_and_optimizer_states_to_the_nodes_ram()
    {
        const long psi = 1_000_000_000;
        var layout = new ParallelLayout { Gpus = 8, Nodes = 2, Sharding = Sharding.Zero2, Offload = Offload.Optimizer }.Validate();
        var ledger = ParallelMemory.Plan(StatesOnly(psi), layout);
        Assert.Equal(2.0 * psi, ModelStateBytes(ledger), 0);
        // Each node hosts 4 ranks' (2 + 12)Ψ/8 partitions.
        double offloaded = ledger.CpuPerNode.Where(l => l.Kind != LineKind.CheckpointLoad).Sum(l => l.Bytes);
        Assert.Equal(4 * 14.0 * psi / 8, offloaded, 0);
        // Without zero.Init each of the 4 processes on a node loads its own 16-bit copy first: 4 × 2Ψ beats the 7 GB offload.
        Assert.Equal((long)Math.Max(offloaded, 4 * 2.0 * psi), ledger.CpuBytesPerNode);
    }

    [Fact]
    public void Cpu_ram_check_fails_when_the_node_is_short()
    {
        var layout = new ParallelLayout { Gpus = 2, Sharding = Sharding.Zero3, Offload = Offload.Params }.Validate();
        var ledger = ParallelMemory.Plan(StatesOnly(10_000_000_000), layout);
        Assert.True(ledger.CpuBytesPerNode >= 160_000_000_000L); // 16 B × 10B params, all on one node
        Assert.False(ledger.FitsCpu(64L << 30));
        Assert.True(ledger.FitsCpu(ledger.CpuBytesPerNode));
        Assert.True(ledger.FitsCpu(null));
    }
}
