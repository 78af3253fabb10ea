using Afinado.Training.Loop;
using System.Diagnostics;
using Afinado.Evaluation.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Experiments;

/// <summary>What one training stage did: steps, wall time, the loss curve (mean loss per logged window).</summary>
public sealed record TrainingLog(long Steps, double WallSeconds, IReadOnlyList<LossPoint> LossCurve)
{
    public double FinalLoss => LossCurve.Count > 0 ? LossCurve[^1].TrainLoss : double.NaN;
}

/// <summary>
/// Plain minibatch backprop with AdamW over the parameters that require gradients (frozen ones are neither given to
/// the optimizer nor updated). Seeded shuffling; one dispose scope per step so native memory stays flat.
/// </summary>
public static class SupervisedTrainer
{
    public static TrainingLog Train(nn.Module<Tensor, Tensor> model, float[] inputs, long[] labels, int features,
        int epochs, int batchSize, double learningRate, int seed, int logEvery = 10)
    {
        var sw = Stopwatch.StartNew();
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        using var opt = optim.AdamW(trainable, lr: learningRate, weight_decay: 0.01);
        using var x = tensor(inputs, [labels.Length, features]);
        using var y = tensor(labels);
        var rng = new Random(seed);
        var order = Enumerable.Range(0, labels.Length).ToArray();
        var curve = new List<LossPoint>();
        long step = 0;
        double windowSum = 0;
        int windowCount = 0;
        model.train();
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            rng.Shuffle(order);
            for (int start = 0; start < order.Length; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var n = Math.Min(batchSize, order.Length - start);
                var idx = tensor(order.AsSpan(start, n).ToArray().Select(i => (long)i).ToArray());
                var loss = nn.functional.cross_entropy(model.call(x.index_select(0, idx)), y.index_select(0, idx));
                opt.zero_grad();
                loss.backward();
                opt.step();
                step++;
                windowSum += loss.item<float>();
                windowCount++;
                if (windowCount == logEvery || (epoch == epochs - 1 && start + n >= order.Length))
                {
                    curve.Add(new LossPoint(step, windowSum / windowCount));
                    windowSum = 0;
                    windowCount = 0;
                }
            }
        }
        model.eval();
        return new TrainingLog(step, sw.Elapsed.TotalSeconds, curve);
    }
}
