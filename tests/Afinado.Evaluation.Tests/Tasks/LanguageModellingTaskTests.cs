using Afinado.Evaluation.Data;
using Afinado.Evaluation.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Tests.Tasks;

public class LanguageModellingTaskTests
{
    /// <summary>Uniform next-token distribution over 256 tokens: every token costs exactly ln 256 nats.</summary>
    private sealed class UniformLm() : nn.Module<Tensor, Tensor>("uniform")
    {
        public override Tensor forward(Tensor ids) => zeros(ids.shape[0], ids.shape[1], 256);
    }

    [Fact]
    public void Uniform_model_scores_ln_256_per_token_with_confidence_1_over_256()
    {
        long[][] items = [[72, 105, 33], [1, 2, 3, 4, 5]];
        var task = new LanguageModellingTask(LanguageModellingTask.Describe("t", TaskRole.Retained), items);
        var scores = task.Score(new UniformLm(), "uniform");
        Assert.Equal(Math.Log(256), scores.Score, 5);
        Assert.Equal(2 + 4, scores.AllPredictions.Count);
        Assert.All(scores.AllPredictions, p => Assert.Equal(1.0 / 256, p.Confidence, 6));
        Assert.All(scores.AllPredictions, p => Assert.False(p.Correct)); // argmax of a tie is token 0, never the next token here
        Assert.Equal(2 * Math.Log(256), scores.Items[0].Numerator, 4);
        Assert.False(task.Info.HigherIsBetter);
    }

    [Fact]
    public void Fortune_files_split_on_percent_lines_and_strip_overstrike()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "first\nline two\n%\nB\bBold\n%\n\n%\nlast\n");
            var items = FortuneFile.Read(path);
            Assert.Equal(["first\nline two", "Bold", "last"], items);
        }
        finally { File.Delete(path); }
    }
}
