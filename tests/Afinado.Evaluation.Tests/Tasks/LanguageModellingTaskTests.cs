using Afinado.Training.Data;
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
    public void Task_texts_are_split_by_the_training_corpus_strfile_rule()
    {
        var path = Path.GetTempFileName();
        try
        {
            // One parser for the training corpus and the tasks: only an exact "%" line splits (a "% " line is text, as
            // fortune shows it), indentation and overstrike bytes are kept, empty items are dropped.
            File.WriteAllText(path, "first\nline two\n%\n  B\bBold\n% \nstill bold\n%\n\n%\nlast\n");
            var items = FortuneCorpus.ReadItems(path, "text");
            Assert.Equal(["first\nline two", "  B\bBold\n% \nstill bold", "last"], items);
            Assert.Equal(FortuneCorpus.ParseFortunes(File.ReadAllLines(path)), items);
            Assert.Equal([path], FortuneCorpus.FilesAt(path, "text"));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_missing_task_text_names_the_field()
    {
        var e = Assert.Throws<InputError>(() => FortuneCorpus.ReadItems("/nonexistent/fortunes", "--tasks: spanish.text"));
        Assert.Equal("--tasks: spanish.text", e.Field);
    }
}
