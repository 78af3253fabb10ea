using Afinado.Evaluation.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Tasks;

/// <summary>
/// Per-token loss (nats) on the answers of held-out supervised examples, what their training optimised: each item is an
/// example's token ids with a flag per id saying whether it is an answer token (assistant turns, completions). The prompt —
/// and, for a few-shot alternative, the examples put before it — is context only. An item contributes the summed NLL of
/// its answer tokens and one prediction per answer token (confidence = top next-token probability, correct = it is the
/// actual token) for calibration, as <see cref="LanguageModellingTask"/> does for whole texts.
/// </summary>
public sealed class AnswerModellingTask(TaskInfo info, IReadOnlyList<(long[] Ids, bool[] Scored)> items) : IEvalTask
{
    public TaskInfo Info { get; } = info;
    public int ItemCount => items.Count;
    /// <summary>Answer tokens scored over all items.</summary>
    public long Tokens => items.Sum(i => (long)i.Scored.Skip(1).Count(s => s));
    /// <summary>The longest item (context included), in tokens.</summary>
    public int LongestItem => items.Count == 0 ? 0 : items.Max(i => i.Ids.Length);

    public static TaskInfo Describe(string name, TaskRole role) => new(name, role, TaskInfo.LanguageModelling, "loss/answer token", HigherIsBetter: false);

    public TaskScores Score(nn.Module<Tensor, Tensor> model, string modelName)
    {
        var results = new ItemResult[items.Count];
        model.eval();
        using (no_grad())
        {
            for (int i = 0; i < items.Count; i++)
            {
                var (ids, scored) = items[i];
                int[] positions = Enumerable.Range(1, ids.Length - 1).Where(t => scored[t]).ToArray();
                if (positions.Length == 0) throw new ArgumentException($"task '{Info.Name}': item {i} has no answer token to predict");
                using var scope = NewDisposeScope();
                var logits = model.call(tensor(ids[..^1], [1, ids.Length - 1])).reshape(ids.Length - 1, -1);
                // Logits at t − 1 predict the id at t.
                var rows = tensor(positions.Select(t => (long)t - 1).ToArray());
                var logProbs = nn.functional.log_softmax(logits.index_select(0, rows), 1);
                var targets = tensor(positions.Select(t => ids[t]).ToArray());
                double nll = -logProbs.gather(1, targets.unsqueeze(1)).sum().item<float>();
                var (top, arg) = logProbs.max(1);
                var conf = top.exp().to(ScalarType.Float64).data<double>().ToArray();
                var predicted = arg.data<long>().ToArray();
                var predictions = new Prediction[positions.Length];
                for (int k = 0; k < positions.Length; k++) predictions[k] = new Prediction(Math.Clamp(conf[k], 0, 1), predicted[k] == ids[positions[k]]);
                results[i] = new ItemResult(nll, positions.Length, predictions);
            }
        }
        return new TaskScores(Info, modelName, results);
    }
}
