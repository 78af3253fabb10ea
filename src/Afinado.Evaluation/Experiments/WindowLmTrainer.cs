using Afinado.Training.Loop;
using System.Diagnostics;
using Afinado.Evaluation.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// Next-token backprop on random windows of a token stream (the training texts joined with a separator): AdamW over the
/// parameters that require gradients, seeded window sampling, one dispose scope per step.
/// </summary>
public static class WindowLmTrainer
{
    public static TrainingLog Train(nn.Module<Tensor, Tensor> model, long[] stream, int steps, int batch, int window,
        double learningRate, int seed, int logEvery = 20)
    {
        if (stream.Length <= window + 1) throw new ArgumentException($"the training stream ({stream.Length} tokens) is shorter than one window ({window + 1})");
        var sw = Stopwatch.StartNew();
        using var opt = optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: learningRate, weight_decay: 0.01);
        using var data = tensor(stream);
        var rng = new Random(seed);
        var curve = new List<LossPoint>();
        double sum = 0;
        int count = 0;
        model.train();
        for (int step = 1; step <= steps; step++)
        {
            using var scope = NewDisposeScope();
            var starts = Enumerable.Range(0, batch).Select(_ => (long)rng.Next(stream.Length - window - 1)).ToArray();
            var offsets = arange(window + 1, dtype: ScalarType.Int64);
            var idx = tensor(starts).unsqueeze(1) + offsets.unsqueeze(0);   // [B, W+1]
            var tokens = data.index_select(0, idx.reshape(-1)).reshape(batch, window + 1);
            var logits = model.call(tokens.narrow(1, 0, window));
            var loss = nn.functional.cross_entropy(logits.reshape(batch * window, -1), tokens.narrow(1, 1, window).reshape(-1));
            opt.zero_grad();
            loss.backward();
            opt.step();
            sum += loss.item<float>();
            count++;
            if (count == logEvery || step == steps)
            {
                curve.Add(new LossPoint(step, sum / count));
                sum = 0;
                count = 0;
            }
        }
        model.eval();
        return new TrainingLog(steps, sw.Elapsed.TotalSeconds, curve);
    }
}
