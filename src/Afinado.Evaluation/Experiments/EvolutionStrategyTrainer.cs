using Afinado.Training.Loop;
using System.Diagnostics;
using Afinado.Evaluation.Runs;
using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Experiments;

/// <summary>
/// A gradient-free finetune for the class-split experiment: antithetic evolution strategies (Salimans et al. 2017).
/// Each generation draws <c>population</c> Gaussian directions ε over all trainable parameters, evaluates the loss at
/// θ ± σε on one minibatch, estimates ∇L ≈ Σ (L⁺ − L⁻) ε / (2 n σ) and takes an Adam step with it. No backward pass
/// and no autograd graph: the model is only ever run forward. (The training engine's ES/DFA rules replace this once
/// they land; this one keeps Evaluation's non-backprop comparison self-contained.)
/// </summary>
public static class EvolutionStrategyTrainer
{
    public static TrainingLog Train(nn.Module<Tensor, Tensor> model, float[] inputs, long[] labels, int features,
        int generations, int population, float sigma, double learningRate, int batchSize, int seed, int logEvery = 10)
    {
        var sw = Stopwatch.StartNew();
        var ps = model.parameters().Where(p => p.requires_grad).ToList();
        using var x = tensor(inputs, [labels.Length, features]);
        using var y = tensor(labels);
        var generator = new Generator((ulong)seed);
        var rng = new Random(seed);
        // Adam moments for the ES gradient estimate, one per parameter.
        var m = ps.Select(p => zeros_like(p).DetachFromDisposeScope()).ToList();
        var v = ps.Select(p => zeros_like(p).DetachFromDisposeScope()).ToList();
        const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
        var curve = new List<LossPoint>();
        double sum = 0;
        int count = 0;
        model.eval();
        using (no_grad())
        {
            for (int gen = 1; gen <= generations; gen++)
            {
                using var scope = NewDisposeScope();
                var idx = tensor(Enumerable.Range(0, batchSize).Select(_ => (long)rng.Next(labels.Length)).ToArray());
                var xb = x.index_select(0, idx);
                var yb = y.index_select(0, idx);
                var grad = ps.Select(p => zeros_like(p)).ToList();
                double genLoss = 0;
                for (int k = 0; k < population; k++)
                {
                    using var member = NewDisposeScope(); // one noise direction alive at a time (the planned ledger counts one)
                    var noise = ps.Select(p => randn(p.shape, generator: generator)).ToList();
                    for (int i = 0; i < ps.Count; i++) ps[i].add_(noise[i], alpha: sigma);
                    var plus = nn.functional.cross_entropy(model.call(xb), yb).item<float>();
                    for (int i = 0; i < ps.Count; i++) ps[i].add_(noise[i], alpha: -2 * sigma);
                    var minus = nn.functional.cross_entropy(model.call(xb), yb).item<float>();
                    for (int i = 0; i < ps.Count; i++) ps[i].add_(noise[i], alpha: sigma); // back to θ
                    var weight = (plus - minus) / (2.0 * population * sigma);
                    for (int i = 0; i < ps.Count; i++) grad[i].add_(noise[i], alpha: weight);
                    genLoss += (plus + minus) / 2;
                }
                var bc1 = 1 - Math.Pow(beta1, gen);
                var bc2 = 1 - Math.Pow(beta2, gen);
                for (int i = 0; i < ps.Count; i++)
                {
                    m[i].mul_(beta1).add_(grad[i], alpha: 1 - beta1);
                    v[i].mul_(beta2).addcmul_(grad[i], grad[i], value: 1 - beta2);
                    var step = (m[i] / bc1) / ((v[i] / bc2).sqrt() + eps);
                    ps[i].add_(step, alpha: -learningRate);
                }
                sum += genLoss / population;
                count++;
                if (count == logEvery || gen == generations)
                {
                    curve.Add(new LossPoint(gen, sum / count));
                    sum = 0;
                    count = 0;
                }
            }
        }
        foreach (var t in m.Concat(v)) t.Dispose();
        return new TrainingLog(generations, sw.Elapsed.TotalSeconds, curve);
    }
}
