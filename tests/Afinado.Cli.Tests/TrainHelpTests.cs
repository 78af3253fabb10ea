using Afinado.Cli;
using Afinado.Training.Loop;

namespace Afinado.Cli.Tests;

/// <summary><c>train --help</c> shows the default of every flag a run without a recipe takes from TrainConfig.</summary>
public class TrainHelpTests
{
    [Fact]
    public async Task Every_tuning_flag_names_its_default()
    {
        var o = new StringWriter();
        Assert.Equal(0, await CliApp.RunAsync(["train", "--help"], o, new StringWriter()));
        string help = o.ToString();
        var d = new TrainConfig { ModelConfigJson = "", Data = "" };
        string Line(string flag) => Assert.Single(help.Split('\n'), l => l.TrimStart().StartsWith(flag + " ", StringComparison.Ordinal));
        Assert.Contains($"[default: {d.SequenceLength};", Line("--seq"));
        Assert.Contains($"[default: {d.BatchSize};", Line("--batch"));
        Assert.Contains($"[default: {d.MaxSteps};", Line("--max-steps"));
        Assert.Contains($"[default: {TrainVocabulary.Word(d.Method)};", Line("--method"));
        Assert.Contains($"[default: {d.LoraRank};", Line("--lora-rank"));
        Assert.Contains($"[default: {d.Seed};", Line("--seed"));
        foreach (var flag in new[] { "--tokenizer", "--grad-accum", "--optimizer", "--lr", "--min-lr", "--warmup", "--weight-decay", "--momentum",
                     "--clip-norm", "--lora-alpha", "--lora-dropout", "--lora-targets", "--rule", "--es-pairs", "--es-sigma", "--es-rank",
                     "--surrogate", "--attention", "--eval-every", "--eval-batches", "--checkpoint-every", "--threads" })
            Assert.Contains("default", Line(flag));
    }
}
