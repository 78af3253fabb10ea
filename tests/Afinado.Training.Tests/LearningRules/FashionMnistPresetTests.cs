using Afinado.Training.LearningRules.Bench;

namespace Afinado.Training.Tests.LearningRules;

public class FashionMnistPresetTests
{
    [Fact]
    public void Every_benchmark_row_has_its_own_id()
    {
        var ids = FashionMnistPresets.All.Concat(FashionMnistPresets.MemoryProbes).Select(s => s.Id).ToList();
        var repeated = ids.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(repeated.Count == 0, $"repeated row ids: {string.Join(", ", repeated)}");
    }

    [Fact]
    public void An_unknown_row_names_the_flag_and_lists_the_rows()
    {
        var e = Assert.Throws<InputError>(() => FashionMnistPresets.Find("no-such-row"));
        Assert.Equal(BenchParameters.Runs, e.Parameter);
        Assert.Contains("mlp-es-lowrank", e.Message);
    }
}
