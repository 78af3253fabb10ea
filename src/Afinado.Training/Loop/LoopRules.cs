using Afinado.Planner;
using Afinado.Planner.Memory;
using Afinado.Training.LearningRules;
using Afinado.Training.Models;
using Afinado.Training.Optim;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Loop;

/// <param name="Model">Maps a batch input to logits.</param>
/// <param name="Trainable">The parameters the selection made trainable (named as in the state dict), the optimizer's.</param>
/// <param name="Optimizer">The run's optimizer over <paramref name="Trainable"/>.</param>
/// <param name="Loss">Mean loss of logits against targets (cross-entropy for every built-in task).</param>
public sealed record RuleContext(nn.Module<Tensor, Tensor> Model, IReadOnlyList<(string Name, Parameter Parameter)> Trainable,
    IOptimizer Optimizer, Func<Tensor, Tensor, Tensor> Loss, long Seed);

/// <summary>
/// The run's <c>--rule</c> built for the training loop, so every rule gets the loop's data, schedule, trainable selection
/// (full, freeze, LoRA), checkpoints and memory measurement:
/// <list type="bullet">
/// <item>The rules see the run's trainable parameters only: ES perturbs exactly those (LoRA adapters under <c>--method lora</c>).</item>
/// <item>DFA taps every decoder block output of <see cref="LlamaForCausalLM"/>: the block sees a detached input and gets e·B_i.</item>
/// <item>Micro-batches: backprop accumulates them one at a time; the other rules score the step's micro-batches joined into
/// one batch, so every ES member sees the same effective batch backprop averages over (forward memory grows with
/// <c>--grad-accum</c>; keep it 1 for the smallest peak).</item>
/// <item>Updates go through the run's optimizer at the scheduled learning rate, after the run's gradient clip. Exception:
/// <c>--rule es --optimizer sgd</c> is MeZO-style: the rule updates θ in place pair by pair (no .grad, no estimate vector,
/// no optimizer state; weight decay is not applied).</item>
/// <item>Checkpoints: noise seeds are (seed, step, pair), so the step index is all ES needs; Guided ES adds its surrogate history.</item>
/// </list>
/// </summary>
public static class LoopRules
{
    /// <summary>MeZO-style ES: no optimizer, no .grad (see the class summary).</summary>
    public static bool Direct(TrainConfig config) => TrainVocabulary.PlannerRule(config.Rule, config.Optimizer) == LearningRule.EsDirect;

    public static ILearningRule Create(TrainConfig config, RuleContext context)
    {
        if (config.Rule != LearningRule.Backprop) CheckEsSettings(config);
        long n = context.Trainable.Sum(t => t.Parameter.numel());
        var seed = (ulong)context.Seed;
        var settings = new RuleSettings
        {
            Rule = config.Rule,
            // Raw loss differences (MeZO's estimator): with a handful of pairs, centered ranks would reduce it to a sign.
            Es = new EsOptions { Sigma = config.EsSigma, Pairs = config.EsPairs, Shaping = FitnessShaping.None, PopulationChunkPairs = 0, Seed = seed, NoiseRank = config.EsRank },
            GuidedEs = new GuidedEsOptions { Sigma = config.EsSigma * Math.Sqrt(n), Pairs = config.EsPairs, PopulationChunkPairs = 0, Seed = seed },
            Surrogate = config.Surrogate,
            FeedbackSeed = seed + 7,
        };
        return RuleFactory.Create(settings, new LoopLossModel(context), Direct(config) ? null : context.Optimizer);
    }

    private static void CheckEsSettings(TrainConfig config)
    {
        if (config.EsPairs < 1) throw new InputError(TrainParameters.EsPairs, $"{config.EsPairs} is not positive", "Use 1 or more antithetic pairs.");
        if (!(config.EsSigma > 0)) throw new InputError(TrainParameters.EsSigma, $"{config.EsSigma} is not positive", "Use e.g. 1e-2.");
        if (config.EsRank < 0) throw new InputError(TrainParameters.EsRank, $"{config.EsRank} is negative", "Use 0 for dense noise or a rank r >= 1 for low-rank noise.");
        if (config.EsRank > 0 && config.Rule != LearningRule.Es)
            throw new InputError(TrainParameters.EsRank, $"low-rank noise is an es option and the rule is {TrainVocabulary.Word(config.Rule)}", $"Drop {TrainParameters.EsRank} or use {TrainParameters.Rule} es.");
    }

    /// <summary>The loop's model and loss seen as a rule's loss model; DFA taps go through <see cref="LlamaForCausalLM.Forward(Tensor, Func{Tensor, Tensor})"/>.</summary>
    private sealed class LoopLossModel(RuleContext ctx) : IFeedbackModel
    {
        public IReadOnlyList<Parameter> TrainableParameters { get; } = ctx.Trainable.Select(t => t.Parameter).ToList();

        public Tensor Loss(Batch batch) => ctx.Loss(ctx.Model.call(batch.Inputs), batch.Targets);

        public Tensor Loss(Batch batch, IFeedbackTap tap)
        {
            var llama = ctx.Model as LlamaForCausalLM
                ?? throw new InputError(TrainParameters.Rule, $"DFA needs a Llama-style decoder and this model is {ctx.Model.GetType().Name}", $"Use {TrainParameters.Rule} backprop or es.");
            return ctx.Loss(tap.Output(llama.Forward(batch.Inputs, tap.Hidden)), batch.Targets);
        }

        public IDisposable ForwardOnly() => new EvalMode(ctx.Model);
    }

    /// <summary>Eval mode until disposed, then the mode the model had.</summary>
    private sealed class EvalMode : IDisposable
    {
        private readonly nn.Module _model;
        private readonly bool _wasTraining;

        public EvalMode(nn.Module model)
        {
            _model = model;
            _wasTraining = model.training;
            model.eval();
        }

        public void Dispose()
        {
            if (_wasTraining) _model.train();
        }
    }
}
