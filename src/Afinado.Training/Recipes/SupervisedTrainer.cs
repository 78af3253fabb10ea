using Afinado.Training.Data;
using Afinado.Training.LearningRules;
using Afinado.Training.Loop;
using Afinado.Training.Optim;
using TorchSharp;
using static TorchSharp.torch;
using Afinado.Training.Runs;

namespace Afinado.Training.Recipes;

/// <summary>What one training stage did: steps, wall time, the loss curve (mean loss per logged window).</summary>
/// <param name="PeakGradientBytes">The most gradient bytes a step held (measured; 0 for rules without a backward pass).</param>
public sealed record TrainingLog(long Steps, double WallSeconds, IReadOnlyList<LossPoint> LossCurve, long PeakGradientBytes = 0)
{
    public double FinalLoss => LossCurve.Count > 0 ? LossCurve[^1].TrainLoss : double.NaN;
}

/// <summary>
/// Plain minibatch backprop (the training engine's <see cref="BackpropRule"/>) with AdamW (weight decay 0.01) over the
/// parameters that require gradients (frozen ones are neither given to the optimizer nor updated), through the one
/// training loop. Seeded shuffling; one dispose scope per step so native memory stays flat.
/// </summary>
public static class SupervisedTrainer
{
    public static TrainingLog Train(nn.Module<Tensor, Tensor> model, float[] inputs, long[] labels, int features,
        int epochs, int batchSize, double learningRate, int seed, int logEvery = 10)
    {
        var lossModel = new ClassifierLossModel(model);
        using var opt = new AdamW(Optimizers.ByPosition(lossModel.TrainableParameters), 0.9, 0.999, 1e-8, weightDecay: 0.01);
        using var rule = new BackpropRule(lossModel, opt);
        using var x = tensor(inputs, [labels.Length, features]);
        using var y = tensor(labels);
        var rng = new Random(seed);
        var order = Enumerable.Range(0, labels.Length).ToArray();
        long perEpoch = (order.Length + batchSize - 1) / batchSize;
        int start = order.Length;
        // Each epoch reshuffles the order and walks it in batches (the last one smaller when the batch does not divide it).
        Batch Next()
        {
            if (start >= order.Length)
            {
                rng.Shuffle(order);
                start = 0;
            }
            int n = Math.Min(batchSize, order.Length - start);
            var idx = tensor(order.AsSpan(start, n).ToArray().Select(i => (long)i).ToArray());
            start += n;
            return new Batch(x.index_select(0, idx), y.index_select(0, idx));
        }
        var log = RecipeLoop.Run(model, lossModel.TrainableParameters, opt, rule, new WalkBatches("class-split minibatches", Next),
            epochs * perEpoch, learningRate, logEvery);
        model.eval();
        return log;
    }
}
