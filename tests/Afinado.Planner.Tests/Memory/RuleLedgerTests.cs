using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

/// <summary>The planner's learning-rule mode: what each rule keeps, on GPU and CPU (the measured CPU bar is in Afinado.Training.Tests).</summary>
public class RuleLedgerTests
{
    [Fact]
    public void Es_lora_on_llama_8b_costs_inference_level_memory_not_backprop()
    {
        var job = new Job { Method = TrainingMethod.Lora, Batch = 1, Seq = 2048 };
        var backprop = Ledger(Llama31_8B, job);
        var es = Ledger(Llama31_8B, job with { Rule = LearningRule.Es });
        var infer = Ledger(Llama31_8B, new Job { Task = JobTask.Infer, Batch = 1, Seq = 2048 });
        double weights = es.Sum(Category.Weights, Phase.PerturbedLayer);
        Assert.True(es.PeakPhase is Phase.PerturbedLayer or Phase.PerturbedLoss, es.PeakPhase.Name());
        Assert.True(es.Sum(Category.Activations, Phase.Forward) == 0, "ES saves nothing for backward");
        Assert.True(backprop.PeakBytes > es.PeakBytes + 4e9, $"backprop {backprop.PeakBytes:E3} vs ES {es.PeakBytes:E3}");
        // Weights + adapters + one ε + a forward of the full training sequence (its logits for every position): within
        // 20 % of the inference plan, whose logits are the last token's only.
        Assert.InRange(es.PeakBytes / (double)infer.PeakBytes, 1.0, 1.2);
        Assert.InRange(weights / es.PeakBytes, 0.8, 1.0);
    }

    [Fact]
    public void Es_direct_has_no_estimate_gradients_or_optimizer_state_and_es_has_them()
    {
        var arch = Synthetic(512, 4, 8, 8, 1408, 32000);
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 2, Seq = 256 };
        long n = Planner.Fit.Planner.SelectionFor(arch, job).TrainableParameters;
        var direct = Ledger(arch, job with { Rule = LearningRule.EsDirect });
        var es = Ledger(arch, job with { Rule = LearningRule.Es });
        Assert.Equal(0, direct.Tensors.Where(e => e.Category is Category.Gradients or Category.OptimizerState).Sum(e => e.Bytes));
        Assert.Equal(4.0 * n, direct.Bytes(LineKind.EsPerturbation));
        Assert.Equal(2 * 4.0 * n, es.Sum(Category.OptimizerState, Phase.PerturbedLayer));
        Assert.Equal(2 * 4.0 * n, es.Bytes(LineKind.EsEstimate));
        // The perturbed forward gains exactly AdamW's state; the step adds estimate, .grad and AdamW's foreach temporary.
        Assert.Equal(2 * 4.0 * n, es.BytesAt(Phase.PerturbedLayer) - direct.BytesAt(Phase.PerturbedLayer), 1.0);
        Assert.Equal(Phase.OptimizerStep, es.PeakPhase);
    }

    [Fact]
    public void Es_forward_covers_the_logits_of_every_position()
    {
        var arch = Synthetic(256, 2, 4, 4, 704, 128_000);
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, Batch = 4, Seq = 1024, Rule = LearningRule.EsDirect };
        var l = Ledger(arch, job);
        Assert.Equal(Phase.PerturbedLoss, l.PeakPhase);
        double tv = 4.0 * 1024 * 128_000;
        Assert.Equal((2 + 4 + 4) * tv + 2.0 * 4 * 1024 * 256, l.Bytes(LineKind.NoGradForwardLoss));
        // Micro-batches are concatenated into one batch for the rule, so accumulation does not shrink the forward.
        Assert.Equal(l.Bytes(LineKind.NoGradForwardLoss), Ledger(arch, job with { Batch = 1, GradAccumulation = 4 }).Bytes(LineKind.NoGradForwardLoss));
    }

    [Fact]
    public void Dfa_keeps_each_blocks_own_tensors_but_no_graph_between_blocks()
    {
        var arch = Synthetic(512, 6, 8, 8, 1408, 32000);
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 2, Seq = 256 };
        var bp = Ledger(arch, job);
        var dfa = Ledger(arch, job with { Rule = LearningRule.Dfa });
        double T = 2 * 256;
        Assert.Equal(6.0 * 32000 * 512 * 4, dfa.Bytes(LineKind.DfaFeedbackMatrices));
        Assert.Equal(6 * T * 512 * 4, dfa.Bytes(LineKind.DfaInjectedErrors));
        // Blocks 1..5 see detached inputs: their first norm keeps no fp32 input for an input gradient.
        Assert.True(dfa.Bytes(LineKind.ActivationsNorms) < bp.Bytes(LineKind.ActivationsNorms));
        Assert.Equal(bp.Sum(Category.OptimizerState, Phase.OptimizerStep), dfa.Sum(Category.OptimizerState, Phase.OptimizerStep));
        Assert.Equal(bp.Bytes(LineKind.Gradients), dfa.Bytes(LineKind.Gradients));
    }

    [Fact]
    public void Guided_es_adds_the_surrogate_history_and_basis_per_k()
    {
        var arch = Synthetic(256, 2, 4, 4, 704, 8000);
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 1, Seq = 128, Rule = LearningRule.GuidedEs };
        long n = Planner.Fit.Planner.SelectionFor(arch, job).TrainableParameters;
        var k1 = Ledger(arch, job);
        var k5 = Ledger(arch, job with { GuidedEsSubspace = 5 });
        Assert.Equal(4.0 * n * 4, k5.Bytes(LineKind.GuidedEsSurrogateHistory) - k1.Bytes(LineKind.GuidedEsSurrogateHistory));
        Assert.Equal(4.0 * n * 4, k5.Bytes(LineKind.GuidedEsSurrogateAndBasis) - k1.Bytes(LineKind.GuidedEsSurrogateAndBasis));
        Assert.True(k1.Bytes(LineKind.DfaFeedbackMatrices) > 0, "the default surrogate is DFA's");
        Assert.True(k1.Bytes(LineKind.EsPerturbation) > 0);
    }

    [Fact]
    public void Cpu_runtime_is_the_forward_only_constant_only_without_an_optimizer()
    {
        var arch = Synthetic(192, 4, 6, 2, 512, 256);
        var job = new Job { Method = TrainingMethod.Full, Precision = Precision.Fp32, Batch = 8, Seq = 128 };
        Assert.Equal(LedgerBuilder.CpuForwardOnlyRuntimeBytes, Ledger(arch, job with { Rule = LearningRule.EsDirect }, DeviceKind.Cpu).RuntimeBytes, 1.0);
        foreach (var rule in new[] { LearningRule.Es, LearningRule.Dfa, LearningRule.GuidedEs })
            Assert.Equal(LedgerBuilder.CpuTrainingRuntimeBytes, Ledger(arch, job with { Rule = rule }, DeviceKind.Cpu).RuntimeBytes, 1.0);
    }

    [Fact]
    public void Qlora_es_keeps_the_dequantization_buffer_in_the_perturbed_forward()
    {
        var es = Ledger(Llama31_8B, new Job { Method = TrainingMethod.QLora, Batch = 1, Seq = 512, Rule = LearningRule.EsDirect });
        var buffer = es.Line(LineKind.DequantizationBuffer);
        Assert.True((buffer.Phases & Phase.PerturbedLayer) != 0, buffer.Phases.Name());
        Assert.True(es.BytesAt(Phase.PerturbedLayer) < 0.5 * Ledger(Llama31_8B, new Job { Method = TrainingMethod.Lora, Batch = 1, Seq = 512, Rule = LearningRule.EsDirect }).BytesAt(Phase.PerturbedLayer));
    }

    [Theory]
    [InlineData("backprop", LearningRule.Backprop)]
    [InlineData("ES", LearningRule.Es)]
    [InlineData("es-direct", LearningRule.EsDirect)]
    [InlineData("dfa", LearningRule.Dfa)]
    [InlineData(" guided-es ", LearningRule.GuidedEs)]
    public void Rule_names_parse(string text, LearningRule rule) => Assert.Equal(rule, JobOptions.ParseRule(text));

    [Fact]
    public void Bad_rule_input_names_the_flag()
    {
        Assert.Equal(JobParameters.Rule, Assert.Throws<InputError>(() => JobOptions.ParseRule("mezo")).Parameter);
        Assert.Equal(JobParameters.Rule, Assert.Throws<InputError>(() => new Job { Task = JobTask.Infer, Rule = LearningRule.Es }.Validate()).Parameter);
        Assert.Equal(JobParameters.Checkpointing, Assert.Throws<InputError>(() => new Job { Rule = LearningRule.Dfa, Checkpointing = Checkpointing.Full }.Validate()).Parameter);
        Assert.Equal(JobParameters.OptimizerInBackward, Assert.Throws<InputError>(() => new Job { Rule = LearningRule.Es, OptimizerInBackward = true }.Validate()).Parameter);
        Assert.Equal(JobParameters.GuidedEsSubspace, Assert.Throws<InputError>(() => new Job { Rule = LearningRule.GuidedEs, GuidedEsSubspace = 0 }.Validate()).Parameter);
    }
}
