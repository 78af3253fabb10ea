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
        double perParam = l.Sum(Category.OptimizerState, Phase.OptimizerStep) / arch.ParameterCount;
        Assert.InRange(perParam, 2.0, 2.01);
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
