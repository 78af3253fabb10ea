using Afinado.Training.Data;
using Afinado.Training.LearningRules;
using Afinado.Training.Loop;
using Afinado.Training.Optim;
using TorchSharp;
using TorchSharp.Modules;
using AdamW = Afinado.Training.Optim.AdamW;
using static TorchSharp.torch;
using Afinado.Training.Runs;

namespace Afinado.Training.Recipes;

/// <summary>
/// Next-token backprop (the training engine's <see cref="BackpropRule"/>) on random windows of a token stream (the
/// training texts joined with a separator): AdamW (weight decay 0.01) over the parameters that require gradients, through
/// the one training loop; seeded window sampling, one dispose scope per step.
/// </summary>
public static class WindowLmTrainer
{
    public static TrainingLog Train(nn.Module<Tensor, Tensor> model, long[] stream, int steps, int batch, int window,
        double learningRate, int seed, int logEvery = 20)
    {
        if (stream.Length <= window + 1) throw new ArgumentException($"the training stream ({stream.Length} tokens) is shorter than one window ({window + 1})");
        var lossModel = new NextTokenLossModel(model);
        using var opt = new AdamW(Optimizers.ByPosition(lossModel.TrainableParameters), 0.9, 0.999, 1e-8, weightDecay: 0.01);
        using var rule = new BackpropRule(lossModel, opt);
        using var data = tensor(stream);
        var rng = new Random(seed);
        Batch Next()
        {
            var starts = Enumerable.Range(0, batch).Select(_ => (long)rng.Next(stream.Length - window - 1)).ToArray();
            var offsets = arange(window + 1, dtype: ScalarType.Int64);
            var idx = tensor(starts).unsqueeze(1) + offsets.unsqueeze(0);   // [B, W+1]
            var tokens = data.index_select(0, idx.reshape(-1)).reshape(batch, window + 1);
            return new Batch(tokens.narrow(1, 0, window), tokens.narrow(1, 1, window));
        }
        var log = RecipeLoop.Run(model, lossModel.TrainableParameters, opt, rule, new WalkBatches("fortune windows", Next), steps, learningRate, logEvery);
        model.eval();
        return log;
    }

    /// <summary>A causal LM as a learning rule sees it: mean next-token cross-entropy of [B, W] inputs against [B, W] targets.</summary>
    private sealed class NextTokenLossModel(nn.Module<Tensor, Tensor> model) : ILossModel
    {
        public IReadOnlyList<Parameter> TrainableParameters { get; } = model.parameters().Where(p => p.requires_grad).ToList();

        public Tensor Loss(Batch batch)
        {
            var logits = model.call(batch.Inputs);
            return nn.functional.cross_entropy(logits.reshape(batch.Targets.numel(), -1), batch.Targets.reshape(-1));
        }
    }
}
