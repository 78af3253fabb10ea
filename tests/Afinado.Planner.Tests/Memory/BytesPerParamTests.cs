using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

/// <summary>Model-state bytes per parameter against the ZeRO paper and memory.md §1.5's table.</summary>
public class BytesPerParamTests
{
    private static double ModelStatesPerParam(Precision precision, OptimizerKind optimizer)
    {
        var arch = Llama2_7B;
        var job = new Job { Method = TrainingMethod.Full, Precision = precision, Optimizer = optimizer, FusedOptimizer = true, Batch = 1, Seq = 16 };
        var l = Ledger(arch, job);
        double states = l.Sum(Category.Weights, Phase.OptimizerStep) + l.Sum(Category.Gradients, Phase.OptimizerStep) + l.Sum(Category.OptimizerState, Phase.OptimizerStep);
        return states / arch.ParameterCount;
    }

    [Fact]
    public void Zero_paper_mixed_precision_AdamW_is_16_bytes_per_param()
    {
        // ZeRO (arXiv 1910.02054): 2Ψ fp16 params + 2Ψ fp16 grads + 12Ψ (fp32 master, m, v) = 16Ψ. PyTorch AMP holds the
        // fp32 master as the parameter and fp32 gradients: 4 + 4 + 8 = 16 at the optimizer step.
        Assert.Equal(16.0, ModelStatesPerParam(Precision.AmpBf16, OptimizerKind.AdamW), 6);
    }

    [Fact]
    public void Zero_paper_GPT2_1_5B_needs_at_least_24GB_of_model_states()
    {
        const long psi = 1_500_000_000;
        Assert.Equal(24e9, 16.0 * psi, 0);
        Assert.Equal(16.0, ModelStatesPerParam(Precision.AmpFp16, OptimizerKind.AdamW), 6);
    }

    [Theory]
    [InlineData(Precision.Fp32, OptimizerKind.AdamW, 16.0)]
    [InlineData(Precision.Bf16, OptimizerKind.AdamW, 8.0)]
    [InlineData(Precision.Fp32, OptimizerKind.SgdMomentum, 12.0)]
    [InlineData(Precision.Fp32, OptimizerKind.Sgd, 8.0)]
    public void Regimes_match_the_reference_table(Precision p, OptimizerKind o, double expected)
    {
        Assert.Equal(expected, ModelStatesPerParam(p, o), 6);
    }

    [Fact]
    public void Amp_forward_adds_the_16_bit_weight_copies_for_18_bytes_per_param_in_the_HF_sense()
    {
        // HF "Model training anatomy": 6 bytes for weights (fp32 + fp16), 4 grads, 8 AdamW = 18. The cast copies only
        // exist for matmul weights, so the forward holds 4 + 2·(linear share) bytes of weights per parameter.
        var arch = Llama2_7B;
        var l = Ledger(arch, new Job { Method = TrainingMethod.Full, Precision = Precision.AmpBf16, Batch = 1, Seq = 16 });
        double weightsForward = l.Sum(Category.Weights, Phase.Forward) / arch.ParameterCount;
        Assert.InRange(weightsForward, 5.9, 6.0);
    }

    [Fact]
    public void Eight_bit_AdamW_keeps_small_tensors_in_32_bit()
    {
        var arch = Llama2_7B;
        var l = Ledger(arch, new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, Optimizer = OptimizerKind.AdamW8bit, Batch = 1, Seq = 16 });
        // bitsandbytes Optimizer8bit.init_state, tensor by tensor: two uint8 states and two fp32 absmax per block of 256
        // (bitsandbytes 0.44+), or two fp32 states under 4,096 elements.
        double expected = arch.Tensors.Sum(t => t.Elements < 4096 ? 8.0 * t.Elements : 2.0 * t.Elements + 8.0 * ((t.Elements + 255) / 256));
        Assert.Equal(expected, l.Sum(Category.OptimizerState, Phase.OptimizerStep));
        // Every Llama-2-7B tensor is a multiple of 256 elements and none is under 4,096: 2 + 8 / 256 B per parameter.
        Assert.Equal(2.03125, l.Sum(Category.OptimizerState, Phase.OptimizerStep) / arch.ParameterCount, 6);
    }

    [Fact]
    public void The_step_trace_allocates_the_eight_bit_state_the_ledger_counts()
    {
        var arch = Planner.Catalog.ModelCatalog.Get("meta-llama/Llama-3.2-1B");
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, Optimizer = OptimizerKind.AdamW8bit, Batch = 1, Seq = 64 };
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job));
        // What stays after two steps, less the same steps with plain SGD (no state): the optimizer's state.
        long state = Planner.Allocator.StepTraces.For(profile, job).LiveBytes - Planner.Allocator.StepTraces.For(profile, job with { Optimizer = OptimizerKind.Sgd }).LiveBytes;
        var ledger = LedgerBuilder.Build(profile, job, Planner.Devices.DeviceKind.Gpu);
        Assert.Equal(ledger.Sum(Category.OptimizerState, Phase.OptimizerStep), state);
    }

    [Fact]
    public void Paged_optimizer_state_is_listed_but_not_on_the_device()
    {
        var l = Ledger(Llama2_7B, new Job { Method = TrainingMethod.Full, Optimizer = OptimizerKind.PagedAdamW8bit, Batch = 1, Seq = 16 });
        var paged = Assert.Single(l.Tensors, e => e.Category == Category.Paged);
        Assert.Equal(Phase.None, paged.Phases);
        Assert.Equal(0, l.Sum(Category.OptimizerState, Phase.OptimizerStep));
    }
}
