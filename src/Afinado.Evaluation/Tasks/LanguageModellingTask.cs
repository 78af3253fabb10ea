using Afinado.Evaluation.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Tasks;

/// <summary>
/// Per-token loss (nats) and perplexity on held-out texts. Each item is one text's token ids; the model maps ids
/// [1, T] to next-token logits [1, T, V]. An item contributes the summed NLL of predicting tokens 1..T−1 and its T−1
/// predictions (confidence = top next-token probability, correct = top token is the actual next token) for calibration.
/// The full distribution is not kept (V can be large), so Brier on LM tasks is the binary score on confidence.
/// </summary>
public sealed class LanguageModellingTask(TaskInfo info, IReadOnlyList<long[]> items) : IEvalTask
{
    public TaskInfo Info { get; } = info;
    public int ItemCount => items.Count;
    public long Tokens => items.Sum(i => (long)Math.Max(0, i.Length - 1));

    public static TaskInfo Describe(string name, TaskRole role) => new(name, role, TaskInfo.LanguageModelling, "loss/token", HigherIsBetter: false);

    public TaskScores Score(nn.Module<Tensor, Tensor> model, string modelName)
    {
        var results = new ItemResult[items.Count];
        model.eval();
        using (no_grad())
        {
            for (int i = 0; i < items.Count; i++)
            {
                var ids = items[i];
                if (ids.Length < 2) throw new ArgumentException($"task '{Info.Name}': item {i} has fewer than 2 tokens, so nothing to predict");
                using var scope = NewDisposeScope();
                var input = tensor(ids[..^1], [1, ids.Length - 1]);
                var targets = tensor(ids[1..]);
                var logits = model.call(input).reshape(ids.Length - 1, -1);
                var logProbs = nn.functional.log_softmax(logits, 1);
                var nll = -logProbs.gather(1, targets.unsqueeze(1)).squeeze(1).sum().item<float>();
                var (top, arg) = logProbs.max(1);
                var conf = top.exp().to(ScalarType.Float64).data<double>().ToArray();
                var predicted = arg.data<long>().ToArray();
                var predictions = new Prediction[conf.Length];
                for (int t = 0; t < conf.Length; t++) predictions[t] = new Prediction(Math.Clamp(conf[t], 0, 1), predicted[t] == ids[t + 1]);
                results[i] = new ItemResult(nll, ids.Length - 1, predictions);
            }
        }
        return new TaskScores(Info, modelName, results);
    }
}
