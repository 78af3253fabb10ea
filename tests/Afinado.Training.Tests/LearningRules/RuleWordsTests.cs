using System.Text.Json;
using Afinado.Planner.Memory;
using Afinado.Training.LearningRules.Bench;

namespace Afinado.Training.Tests.LearningRules;

/// <summary>Bench rows name their rule with the planner's type and keep the words committed JSON files were written with.</summary>
public class RuleWordsTests
{
    [Theory]
    [InlineData(LearningRule.Backprop, "backprop")]
    [InlineData(LearningRule.Es, "es")]
    [InlineData(LearningRule.EsDirect, "es-direct")]
    [InlineData(LearningRule.Dfa, "dfa")]
    [InlineData(LearningRule.GuidedEs, "guided-es")]
    public void A_bench_row_writes_and_reads_its_rule_as_the_flag_word(LearningRule rule, string word)
    {
        var spec = FashionMnistPresets.Find("mem-bp") with { Rule = rule };
        string json = JsonSerializer.Serialize(spec);
        Assert.Contains($"\"Rule\":\"{word}\"", json);
        Assert.Equal(rule, JsonSerializer.Deserialize<FashionMnistRunSpec>(json)!.Rule);
    }

    [Fact]
    public void An_unknown_rule_word_is_a_json_error_naming_the_word()
    {
        string json = JsonSerializer.Serialize(FashionMnistPresets.Find("mem-bp")).Replace("\"backprop\"", "\"hebbian\"");
        var e = Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<FashionMnistRunSpec>(json));
        Assert.Contains("hebbian", e.Message);
    }
}
