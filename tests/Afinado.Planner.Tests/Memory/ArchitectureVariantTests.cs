using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

public class ArchitectureVariantTests
{
    private static ModelArchitecture Mixtral(int experts, int perToken) => HfConfigReader.Parse($$"""
        {"model_type":"mixtral","hidden_size":1024,"num_hidden_layers":4,"num_attention_heads":16,"num_key_value_heads":4,
         "intermediate_size":3584,"vocab_size":32000,"num_local_experts":{{experts}},"num_experts_per_tok":{{perToken}},"max_position_embeddings":4096}
        """, "mixtral-test");

    [Fact]
    public void Moe_activations_scale_with_active_experts_and_states_with_all_experts()
    {
        var job = new Job { Method = TrainingMethod.Full, Batch = 1, Seq = 512 };
        var top2 = Ledger(Mixtral(8, 2), job);
        var top4 = Ledger(Mixtral(8, 4), job);
        var wide = Ledger(Mixtral(16, 2), job);
        double Mlp(MemoryLedger l) => l.Line(LineKind.ActivationsMlp).Bytes;
        Assert.True(Mlp(top4) > 1.8 * Mlp(top2));
        Assert.InRange(Mlp(wide) / Mlp(top2), 1.0, 1.01); // only the router softmax (4·E B per token) grows
        Assert.True(wide.Sum(Category.OptimizerState, Phase.OptimizerStep) > 1.7 * top2.Sum(Category.OptimizerState, Phase.OptimizerStep));
    }

    /// <summary>transformers 5 holds Mixtral's experts as stacked parameters (MixtralExperts) and its router as a
    /// parameter of MixtralTopKRouter: PEFT's target_modules reach neither (PEFT issue 3009), so all-linear adapts the
    /// attention projections alone and naming an expert linear is refused, naming the flag.</summary>
    [Fact]
    public void Moe_lora_target_modules_reach_no_stacked_expert()
    {
        var arch = Mixtral(8, 2);
        var all = TrainableSelection.Create(arch, TrainingMethod.Lora, lora: new LoraConfig { Rank = 4 });
        Assert.Equal(4 * arch.NumLayers, all.AdapterCount / 2);
        var e = Assert.Throws<InputError>(() => TrainableSelection.Create(arch, TrainingMethod.Lora, lora: new LoraConfig { Rank = 4, Targets = ["w1", "w2", "w3"] }));
        Assert.Equal(JobParameters.LoraTargets, e.Parameter);
        Assert.Contains("transformers 5", e.Problem);
        Assert.DoesNotContain("w1,", e.Fix);
        Assert.Contains("target_parameters", e.Fix);
    }

    /// <summary>PEFT reaches transformers 5's stacked experts through target_parameters: each layer's gate_up_proj
    /// [E, 2I, h] and down_proj [E, h, I], built from the checkpoint's per-expert w1/w3 and w2, get ParamWrapper's
    /// lora_A [r·E, rows] and lora_B [columns, r·E].</summary>
    [Fact]
    public void Moe_target_parameters_adapt_the_stacks_transformers_builds()
    {
        var arch = Mixtral(8, 2);
        var lora = new LoraConfig { Rank = 4, Targets = ["q_proj"], TargetParameters = ["mlp.experts.gate_up_proj", "experts.down_proj"], Dropout = 0 };
        var s = TrainableSelection.Create(arch, TrainingMethod.Lora, lora: lora);
        long h = arch.HiddenSize, I = arch.ExpertWidth, E = 8, r = 4, q = arch.QueryWidth;
        Assert.Equal(3 * arch.NumLayers, s.AdapterCount / 2);
        Assert.Equal(arch.NumLayers * (r * (h + q) + r * E * (2 * I + h) + r * E * (h + I)), s.AdapterParameters);
        var gateUp = s.Adapters.Where(a => a.Module.EndsWith(".experts.gate_up_proj", StringComparison.Ordinal) && a.Layer == 0).ToList();
        Assert.Equal([[r * E, 2 * I], [h, r * E]], gateUp.Select(a => a.Shape));
        var e = Assert.Throws<InputError>(() => TrainableSelection.Create(arch, TrainingMethod.Lora,
            lora: lora with { TargetParameters = ["experts.w1"] }));
        Assert.Contains("mlp.experts.gate_up_proj", e.Fix);
    }

    /// <summary>bitsandbytes replaces nn.Linear modules, and transformers 5 holds Mixtral's experts as stacked parameters and its
    /// router inside MixtralTopKRouter: QLoRA quantizes the attention projections only and the experts stay bf16
    /// (bitsandbytes issue 1849), in the single-GPU ledger and in the multi-GPU one.</summary>
    [Fact]
    public void Qlora_leaves_stacked_experts_in_16_bits()
    {
        var arch = Mixtral(8, 2);
        var l = Ledger(arch, new Job { Method = TrainingMethod.QLora, Batch = 1, Seq = 128 });
        long attention = arch.Tensors.Where(t => t.IsLinearWeight && t.Role is TensorRole.AttnQ or TensorRole.AttnK or TensorRole.AttnV or TensorRole.AttnOut)
            .Sum(t => t.Elements);
        Assert.Equal(attention * DType.Nf4Dq.Bytes(), l.Line(LineKind.WeightsFrozenQuantized).Bytes, tolerance: 1);
        Assert.Equal((arch.ParameterCount - attention) * 2.0, l.Line(LineKind.WeightsSkippedByQuantizer).Bytes, tolerance: 1);
        // The multi-GPU states: the 4-bit codes cover the attention projections, the experts are frozen 16-bit weights.
        var parallel = Afinado.Planner.Parallel.PlanBridge.FromPlan(Afinado.Planner.Fit.Planner.Create(arch, new Job { Method = TrainingMethod.QLora, Batch = 1, Seq = 128 }, []));
        Assert.Equal(attention, parallel.ModelStates.Single(e => e.Kind == LineKind.WeightsFrozenQuantizedCodes).Elements);
        long experts = arch.Tensors.Where(t => t.IsExpert).Sum(t => t.Elements);
        Assert.Equal(experts, parallel.ModelStates.Single(e => e.Kind == LineKind.WeightsFrozen).ExpertElements);
    }

    [Fact]
    public void Inference_prefill_with_eager_attention_pays_the_s_squared_scores()
    {
        var arch = Llama31_8B;
        double Prefill(AttentionKernel k) => Ledger(arch, new Job { Task = JobTask.Infer, Attention = k, Batch = 1, Seq = 8192 }).BytesAt(Phase.Prefill);
        // 32 heads × 8192² × (4 fp32 softmax + 2 bf16 scores) ≈ 12 GiB, plus the 4-D mask
        Assert.True(Prefill(AttentionKernel.Eager) - Prefill(AttentionKernel.Sdpa) > 12e9);
    }

    [Fact]
    public void Quantized_inference_weights_use_the_block_constants()
    {
        var arch = Llama31_8B;
        var l = Ledger(arch, new Job { Task = JobTask.Infer, WeightsDtype = DType.Nf4Dq, Batch = 1, Seq = 16 });
        var linears = l.Line(LineKind.WeightsFrozenQuantized);
        var rest = l.Line(LineKind.WeightsSkippedByQuantizer);
        Assert.Equal(arch.ParameterCount, (long)(linears.Bytes * 8 / DType.Nf4Dq.Bits() + rest.Bytes / 2 + 0.5));
    }
}
