using Afinado.Planner.Memory;
using Afinado.Training.Data;
using Afinado.Training.Loop;
using Afinado.Training.Models;
using Afinado.Training.Optim;
using Afinado.Training.Selection;
using Afinado.Training.Tokenization;
using static TorchSharp.torch;

namespace Afinado.Training.Tests.LearningRules;

/// <summary>The learning rules driven by the training loop on a tiny Llama (built by <see cref="LoopRules"/>).</summary>
[Collection(nameof(SerialCollection))]
public class LoopRuleTests
{
    private sealed record Setup(LlamaForCausalLM Model, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> Trainable,
        Dictionary<string, Tensor> Frozen, IBatchSource Data) : IDisposable
    {
        public void Dispose()
        {
            foreach (var t in Frozen.Values) t.Dispose();
            Model.Dispose();
        }
    }

    private static Setup TinyLora(long seed)
    {
        manual_seed(seed);
        var model = new LlamaForCausalLM(TinyConfigs.Parse(TinyConfigs.Llama));
        var sel = SharedSelection.CreateParameterSelection(model.Architecture, "lora", [], 4, 8, 0.0, ["all-linear"]);
        var trainable = SelectionApplier.Apply(model, sel);
        var names = trainable.Select(t => t.Name).ToHashSet();
        var frozen = model.named_parameters().Where(p => !names.Contains(p.name)).ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var data = DataCatalog.TokenSource("fortunes-es", null, TextTokenizers.Create("byte"), 32);
        return new Setup(model, trainable, frozen, data);
    }

    private static LoopResult Train(Setup s, TrainConfig config, int steps)
    {
        var optimizer = Optimizers.Create(config.Optimizer, s.Trainable, 0, 0.9, 0.9, 0.95, 1e-8);
        using var rule = LoopRules.Create(config, new RuleContext(s.Model, s.Trainable, optimizer, TrainingLoop.CrossEntropy, Seed: 3));
        var loop = new TrainingLoop(new LoopOptions(steps, 4, 1, new LearningRateSchedule(config.LearningRate, config.LearningRate, 0, steps), 1.0,
            steps, 4, 1000, 3), s.Model, s.Trainable, optimizer, rule, s.Data, null);
        return loop.Run(new SilentProgress(), CancellationToken.None);
    }

    private static void AssertFrozenUnchangedAndNoGrad(Setup s)
    {
        foreach (var (name, p) in s.Model.named_parameters())
        {
            Assert.Null(p.grad);
            if (s.Frozen.TryGetValue(name, out var before)) Assert.True(before.equal(p).all().item<bool>(), $"frozen {name} changed");
        }
    }

    [Fact]
    public void Es_on_lora_lowers_loss_and_touches_only_the_adapters()
    {
        using var s = TinyLora(21);
        double before = TrainingLoop.Evaluate(s.Model, s.Data, 4, 4).Loss;
        var config = RunTests.TinyRun(1) with { Rule = LearningRule.Es, Optimizer = OptimizerKind.Sgd, EsPairs = 8, EsSigma = 1e-2, LearningRate = 0.05 };
        var result = Train(s, config, 30);
        double after = TrainingLoop.Evaluate(s.Model, s.Data, 4, 4).Loss;
        Assert.Equal(LoopStatus.Completed, result.Status);
        Assert.Equal(30 * 16, result.ForwardPasses);
        Assert.True(after < before - 0.01, $"validation loss {before} -> {after}");
        AssertFrozenUnchangedAndNoGrad(s);
    }

    [Fact]
    public void Low_rank_es_on_lora_lowers_loss()
    {
        using var s = TinyLora(21);
        double before = TrainingLoop.Evaluate(s.Model, s.Data, 4, 4).Loss;
        var config = RunTests.TinyRun(1) with { Rule = LearningRule.Es, Optimizer = OptimizerKind.Sgd, EsPairs = 8, EsSigma = 1e-2, EsRank = 1, LearningRate = 0.05 };
        var result = Train(s, config, 30);
        double after = TrainingLoop.Evaluate(s.Model, s.Data, 4, 4).Loss;
        Assert.Equal(LoopStatus.Completed, result.Status);
        Assert.True(after < before - 0.01, $"validation loss {before} -> {after}");
        AssertFrozenUnchangedAndNoGrad(s);
    }

    [Fact]
    public void Es_rank_is_validated_with_the_flag_named()
    {
        using var s = TinyLora(23);
        using var optimizer = Optimizers.Create("adamw", s.Trainable, 0, 0.9, 0.9, 0.95, 1e-8);
        var context = new RuleContext(s.Model, s.Trainable, optimizer, TrainingLoop.CrossEntropy, Seed: 3);
        var negative = Assert.Throws<InputError>(() => LoopRules.Create(RunTests.TinyRun(1) with { Rule = LearningRule.Es, EsRank = -1 }, context));
        Assert.Contains(TrainParameters.EsRank.Name, negative.Message);
        var wrongRule = Assert.Throws<InputError>(() => LoopRules.Create(RunTests.TinyRun(1) with { Rule = LearningRule.Dfa, EsRank = 2 }, context));
        Assert.Contains(TrainParameters.EsRank.Name, wrongRule.Message);
    }

    [Fact]
    public void Dfa_step_on_llama_changes_only_trainable_parameters()
    {
        using var s = TinyLora(22);
        var trainableBefore = s.Trainable.Select(t => t.Parameter.detach().clone()).ToList();
        var result = Train(s, RunTests.TinyRun(1) with { Rule = LearningRule.Dfa, Optimizer = OptimizerKind.AdamW }, 1);
        Assert.Equal(LoopStatus.Completed, result.Status);
        Assert.Contains(s.Trainable.Zip(trainableBefore), x => !x.First.Parameter.equal(x.Second).all().item<bool>());
        AssertFrozenUnchangedAndNoGrad(s);
        foreach (var t in trainableBefore) t.Dispose();
    }

    [Theory]
    [InlineData("es", "sgd")]
    [InlineData("guided-es", "adamw")]
    public void Interrupted_run_with_a_forward_only_rule_resumes_to_the_same_weights(string rule, string optimizer)
    {
        string a = Path.Combine(Path.GetTempPath(), $"afinado-rule-{Guid.NewGuid():N}"), b = a + "-b";
        try
        {
            var config = RunTests.TinyRun(5) with { Rule = TrainVocabulary.Rule(rule), Optimizer = TrainVocabulary.Optimizer(optimizer), EsPairs = 2 };
            var full = new LanguageModelRun(config, a).Execute(new SilentProgress(), CancellationToken.None);
            Assert.Equal(rule, full.Rule);
            using var cts = new CancellationTokenSource();
            var stopped = new LanguageModelRun(config, b).Execute(new CancelAt(3, cts), cts.Token);
            Assert.Equal("interrupted", stopped.Status);
            var resumed = LanguageModelRun.Resume(b).Execute(new SilentProgress(), CancellationToken.None);
            Assert.Equal(full.FinalTrainLoss, resumed.FinalTrainLoss);
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, "adapter", "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(b, "adapter", "adapter_model.safetensors")));
        }
        finally
        {
            foreach (var d in new[] { a, b }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    private sealed class CancelAt(long step, CancellationTokenSource cts) : ITrainingProgress
    {
        public void Begin(long firstStep, long totalSteps) { }
        public void Step(long s, double loss, double lr, double rate, TimeSpan eta) { if (s == step) cts.Cancel(); }
        public void Evaluated(long s, double v) { }
        public void Message(InputText text) { }
    }
}
