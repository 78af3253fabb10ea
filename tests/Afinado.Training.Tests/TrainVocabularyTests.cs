using Afinado.Planner;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Afinado.Training.Loop;

namespace Afinado.Training.Tests;

/// <summary>The trainer's job is the planner's: one set of types, spelled in run-config.json as the flags spell them.</summary>
public class TrainVocabularyTests
{
    private static TrainConfig Config() => new() { ModelConfigJson = "{}", Data = "fortunes-en" };

    [Fact]
    public void Run_config_spells_the_planner_types_with_the_flag_words()
    {
        var json = (Config() with { Method = TrainingMethod.Lora, Rule = LearningRule.GuidedEs, Optimizer = OptimizerKind.SgdMomentum, Attention = AttentionKernel.Eager }).ToJson();
        Assert.Contains("\"method\": \"lora\"", json);
        Assert.Contains("\"rule\": \"guided-es\"", json);
        Assert.Contains("\"optimizer\": \"momentum\"", json);
        Assert.Contains("\"attention\": \"eager\"", json);
        var back = TrainConfig.FromJson(json);
        Assert.Equal((TrainingMethod.Lora, LearningRule.GuidedEs, OptimizerKind.SgdMomentum, AttentionKernel.Eager), (back.Method, back.Rule, back.Optimizer, back.Attention));
    }

    [Theory]
    [InlineData("rule", "\"dfa\"", "\"xyz\"", "run-config.json rule")]
    [InlineData("optimizer", "\"adamw\"", "\"adamw-8bit\"", "run-config.json optimizer")]
    [InlineData("method", "\"full\"", "3", "run-config.json method")]
    public void A_run_config_word_the_trainer_does_not_know_names_its_field(string key, string good, string bad, string field)
    {
        var json = Config().ToJson();
        if (key == "rule") json = json.Replace("\"rule\": \"backprop\"", $"\"rule\": {bad}");
        else json = json.Replace($"\"{key}\": {good}", $"\"{key}\": {bad}");
        var e = Assert.Throws<InputError>(() => TrainConfig.FromJson(json));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void The_plan_of_a_run_uses_the_same_values_and_es_with_sgd_is_the_direct_rule()
    {
        var direct = CpuPeakPlanner.JobFor(Config() with { Rule = LearningRule.Es, Optimizer = OptimizerKind.Sgd, Method = TrainingMethod.Lora, Attention = AttentionKernel.Eager });
        Assert.Equal((LearningRule.EsDirect, OptimizerKind.Sgd, TrainingMethod.Lora, AttentionKernel.Eager), (direct.Rule, direct.Optimizer, direct.Method, direct.Attention));
        var withMomentum = CpuPeakPlanner.JobFor(Config() with { Rule = LearningRule.Es, Optimizer = OptimizerKind.SgdMomentum });
        Assert.Equal((LearningRule.Es, OptimizerKind.SgdMomentum), (withMomentum.Rule, withMomentum.Optimizer));
    }

    [Theory]
    [InlineData("method")]
    [InlineData("rule")]
    [InlineData("optimizer")]
    [InlineData("attention")]
    public void Planner_values_the_cpu_trainer_does_not_run_are_refused_by_their_parameter(string key)
    {
        var c = key switch
        {
            "method" => Config() with { Method = TrainingMethod.QLora },
            "rule" => Config() with { Rule = LearningRule.EsDirect },
            "optimizer" => Config() with { Optimizer = OptimizerKind.PagedAdamW8bit },
            _ => Config() with { Attention = AttentionKernel.Flash },
        };
        Assert.Equal(new InputParameter(key), Assert.Throws<InputError>(() => TrainConfigChecks.Validate(c)).Parameter);
        Assert.Equal(new InputParameter(key), Assert.Throws<InputError>(() => (key switch
        {
            "method" => (Action)(() => TrainVocabulary.Method("qlora")),
            "rule" => () => TrainVocabulary.Rule("es-direct"),
            "optimizer" => () => TrainVocabulary.Optimizer("paged-adamw-8bit"),
            _ => () => TrainVocabulary.Attention("flash"),
        })()).Parameter);
    }
}
