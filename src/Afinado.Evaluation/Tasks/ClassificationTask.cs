using Afinado.Evaluation.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Tasks;

/// <summary>
/// Classification accuracy on a fixed set of items. The model maps a batch of inputs [B, features] to logits over ALL
/// its classes; a prediction is the argmax over all of them, so a finetuned model that now answers "class 7" for a
/// retained "class 2" item is wrong (that is the forgetting this task measures). Confidence is the top softmax probability.
/// </summary>
public sealed class ClassificationTask(TaskInfo info, float[] inputs, long[] labels, int features, int batchSize = 512) : IEvalTask
{
    public TaskInfo Info { get; } = info;
    public int ItemCount => labels.Length;

    public TaskScores Score(nn.Module<Tensor, Tensor> model, string modelName)
    {
        var items = new ItemResult[labels.Length];
        model.eval();
        using (no_grad())
        {
            for (int start = 0; start < labels.Length; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var n = Math.Min(batchSize, labels.Length - start);
                var x = tensor(inputs.AsSpan(start * features, n * features).ToArray(), [n, features]);
                var probs = nn.functional.softmax(model.call(x), 1).to(ScalarType.Float64).cpu();
                var classes = (int)probs.shape[1];
                var flat = probs.data<double>().ToArray();
                for (int r = 0; r < n; r++)
                {
                    var row = flat.AsSpan(r * classes, classes).ToArray();
                    var predicted = Array.IndexOf(row, row.Max());
                    var label = (int)labels[start + r];
                    var correct = predicted == label;
                    items[start + r] = new ItemResult(correct ? 1 : 0, 1, [new Prediction(Math.Clamp(row[predicted], 0, 1), correct, label, row)]);
                }
            }
        }
        return new TaskScores(Info, modelName, items);
    }
}
