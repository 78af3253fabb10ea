using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Selection;

/// <summary>
/// LoRA on stacked expert weights through PEFT's <c>target_parameters</c> (peft/tuners/lora/layer.py ParamWrapper):
/// lora_A = nn.Linear(in, r·E), lora_B = nn.Linear(r·E, out) per [E, in, out] parameter; no dropout; at every forward
/// get_delta_weight builds ΔW (the stack's size) and the experts compute with W + ΔW, which their matmuls save.
/// </summary>
public class TargetParametersTests
{
    private static readonly ModelArchitecture Oss = ModelCatalog.Get("openai/gpt-oss-20b");
    private static readonly LoraConfig Experts = new() { Targets = ["q_proj", "v_proj"], Dropout = 0, TargetParameters = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"] };

    [Fact]
    public void Each_stack_gets_a_per_expert_adapter()
    {
        var sel = TrainableSelection.Create(Oss, TrainingMethod.Lora, lora: Experts);
        // q, v: r·(in + out); gate_up [32, 2880, 5760] and down [32, 2880, 2880]: r·E·(in + out).
        long attention = 16L * (2880 + 4096) + 16L * (2880 + 512);
        long experts = 16L * 32 * (2880 + 5760) + 16L * 32 * (2880 + 2880);
        Assert.Equal(24 * (attention + experts), sel.AdapterParameters);
        var a = Assert.Single(sel.Adapters, x => x.Name == "model.layers.0.mlp.experts.gate_up_proj.lora_A.weight");
        Assert.Equal([16L * 32, 2880], a.Shape);
        var b = Assert.Single(sel.Adapters, x => x.Name == "model.layers.0.mlp.experts.gate_up_proj.lora_B.weight");
        Assert.Equal([5760L, 16 * 32], b.Shape);
        Assert.Equal(0, sel.TrainableBaseParameters);
        // Without target_parameters the stacks are out of LoRA's reach: only the attention adapters exist.
        var plain = TrainableSelection.Create(Oss, TrainingMethod.Lora, lora: Experts with { TargetParameters = [] });
        Assert.Equal(24 * attention, plain.AdapterParameters);
    }

    [Fact]
    public void The_merged_weights_are_saved_and_the_delta_is_in_flight()
    {
        var job = new Job { Method = TrainingMethod.Lora, Lora = Experts, Seq = 1024 };
        var with = Planner.Fit.Planner.Create(Oss, job, []).Ledger;
        var without = Planner.Fit.Planner.Create(Oss, job with { Lora = Experts with { TargetParameters = [] } }, []).Ledger;
        long stacks = 32L * 2880 * 5760 + 32L * 2880 * 2880;
        // Every layer saves W + ΔW of both stacks (2 B each); the experts' inputs, saved for dW, come on top.
        Assert.True(with.Line(LineKind.ActivationsMlp).Bytes - without.Line(LineKind.ActivationsMlp).Bytes >= 24 * 2.0 * stacks);
        Assert.Equal(2.0 * 32 * 2880 * 5760, with.Line(LineKind.ExpertDeltaWeight).Bytes);
        Assert.DoesNotContain(without.Tensors, e => e.Kind == LineKind.ExpertDeltaWeight);
        Assert.True(with.TotalBytes > without.TotalBytes + 24 * 2.0 * stacks);
    }

    [Fact]
    public void Bad_targets_and_dropout_name_the_flag()
    {
        var dropout = Assert.Throws<InputError>(() => TrainableSelection.Create(Oss, TrainingMethod.Lora, lora: Experts with { Dropout = 0.05 }));
        Assert.Equal(JobParameters.LoraDropout, dropout.Parameter);
        var unknown = Assert.Throws<InputError>(() => TrainableSelection.Create(Oss, TrainingMethod.Lora, lora: Experts with { TargetParameters = ["experts.w9"] }));
        Assert.Equal(JobParameters.LoraTargetParameters, unknown.Parameter);
        Assert.Contains("experts.gate_up_proj", unknown.Message);
        var notStacked = Assert.Throws<InputError>(() => TrainableSelection.Create(Oss, TrainingMethod.Lora, lora: Experts with { TargetParameters = ["self_attn.sinks"] }));
        Assert.Contains("not a stacked expert weight", notStacked.Message);
        var dense = Assert.Throws<InputError>(() => TrainableSelection.Create(ModelCatalog.Get("meta-llama/Llama-3.2-1B"), TrainingMethod.Lora, lora: Experts));
        Assert.Contains("no stacked expert parameters", dense.Message);
    }

    [Fact]
    public void Llama_4_experts_take_them_too()
    {
        var scout = ModelCatalog.Get("meta-llama/Llama-4-Scout-17B-16E");
        var sel = TrainableSelection.Create(scout, TrainingMethod.Lora, lora: Experts with { Targets = ["q_proj"], TargetParameters = ["feed_forward.experts.gate_up_proj"] });
        long q = 16L * (5120 + 5120), gateUp = 16L * 16 * (5120 + 16384);
        // q_proj matches by suffix in the vision tower too (34 layers of 1408 × 1408 q_proj), as PEFT's target_modules does.
        long visionQ = 34 * 16L * (1408 + 1408);
        Assert.Equal(48 * (q + gateUp) + visionQ, sel.AdapterParameters);
        Assert.Equal(visionQ, sel.VisionAdapterParameters);
    }
}
