using Afinado.Evaluation.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Tests.Tasks;

public class AnswerModellingTaskTests
{
    /// <summary>A model that always predicts the previous token again, with probability 1/2; the rest spread evenly.</summary>
    private sealed class EchoLm() : nn.Module<Tensor, Tensor>("echo")
    {
        public override Tensor forward(Tensor ids)
        {
            long t = ids.shape[1];
            var logits = zeros(ids.shape[0], t, 16);
            // softmax([a, 0 × 15]) gives a/(a + 15) = 1/2 on the echoed token when a = 15.
            return logits.scatter(2, ids.unsqueeze(2), full(ids.shape[0], t, 1, (float)Math.Log(15)));
        }
    }

    [Fact]
    public void Only_answer_tokens_are_scored_and_context_tokens_cost_nothing()
    {
        // Prompt 3 5 | answer 5 5 7: the echo model predicts 5→5 (p 1/2) twice and 5→7 (p 1/30) once.
        long[] ids = [3, 5, 5, 5, 7];
        bool[] answer = [false, false, true, true, true];
        var task = new AnswerModellingTask(AnswerModellingTask.Describe("t", TaskRole.Target), [(ids, answer)]);
        var scores = task.Score(new EchoLm(), "echo");
        double expected = 2 * Math.Log(2) + Math.Log(30);
        Assert.Equal(expected, scores.Items[0].Numerator, 4);
        Assert.Equal(3, scores.Items[0].Denominator);
        Assert.Equal(new[] { true, true, false }, scores.AllPredictions.Select(p => p.Correct));
        Assert.All(scores.AllPredictions, p => Assert.Equal(0.5, p.Confidence, 5));
        Assert.Equal(3, task.Tokens);

        // The same answer after more context scores the same: the few-shot alternative pays only for its answers.
        long[] longer = [9, 9, 9, 3, 5, 5, 5, 7];
        bool[] longerAnswer = [false, false, false, false, false, true, true, true];
        var prompted = new AnswerModellingTask(task.Info, [(longer, longerAnswer)]).Score(new EchoLm(), "echo");
        Assert.Equal(scores.Items[0].Numerator, prompted.Items[0].Numerator, 5);
        Assert.Equal("loss/answer token", task.Info.Metric);
        Assert.False(task.Info.HigherIsBetter);
    }

    [Fact]
    public void An_item_without_answer_tokens_is_an_error()
    {
        var task = new AnswerModellingTask(AnswerModellingTask.Describe("t", TaskRole.Target), [([1L, 2L], [true, false])]);
        Assert.Throws<ArgumentException>(() => task.Score(new EchoLm(), "echo"));
    }
}
