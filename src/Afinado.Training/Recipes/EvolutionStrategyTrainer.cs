using Afinado.Training.Data;
using Afinado.Training.LearningRules;
using Afinado.Training.Loop;
using Afinado.Training.Optim;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Afinado.Training.Runs;

namespace Afinado.Training.Recipes;

/// <summary>
/// The class-split experiment's gradient-free finetune, run by the training engine's <see cref="EsRule"/>: antithetic
/// pairs θ ± σε on one minibatch per generation, the raw-loss estimate Σ (L⁺ − L⁻) ε / (2Pσ) (no fitness shaping, so it
/// is the Gaussian-smoothing gradient) and an Adam step on it. Noise is regenerated from per-pair seeds and members are
/// evaluated in place, so memory is weights + one perturbation buffer + the estimate and Adam's state — no autograd graph.
/// </summary>
public static class EvolutionStrategyTrainer
{
    public static TrainingLog Train(nn.Module<Tensor, Tensor> model, float[] inputs, long[] labels, int features,
        int generations, int population, float sigma, double learningRate, int batchSize, int seed, int logEvery = 10)
    {
        var lossModel = new ClassifierLossModel(model);
        using var x = tensor(inputs, [labels.Length, features]);
        using var y = tensor(labels);
        var rng = new Random(seed);
        using var adam = Optimizers.Adam(Optimizers.ByPosition(lossModel.TrainableParameters));
        using var rule = new EsRule(lossModel, adam, new EsOptions
        {
            Sigma = sigma, Pairs = population, Shaping = FitnessShaping.None, PopulationChunkPairs = 0, Seed = (ulong)seed,
        });
        Batch Next()
        {
            var idx = tensor(Enumerable.Range(0, batchSize).Select(_ => (long)rng.Next(labels.Length)).ToArray());
            return new Batch(x.index_select(0, idx), y.index_select(0, idx));
        }
        var log = RecipeLoop.Run(model, lossModel.TrainableParameters, adam, rule, new WalkBatches("class-split ES minibatches", Next),
            generations, learningRate, logEvery);
        model.eval();
        return log;
    }
}

/// <summary>A classifier as a learning rule sees it: its trainable parameters and the mean cross-entropy of a batch.</summary>
internal sealed class ClassifierLossModel(nn.Module<Tensor, Tensor> model) : ILossModel
{
    public IReadOnlyList<Parameter> TrainableParameters { get; } = model.parameters().Where(p => p.requires_grad).ToList();

    public Tensor Loss(Batch batch) => nn.functional.cross_entropy(model.call(batch.Inputs), batch.Targets);
}
