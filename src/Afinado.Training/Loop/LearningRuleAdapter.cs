using Afinado.Planner;
using Afinado.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Rules = Afinado.Training.LearningRules;

namespace Afinado.Training.Loop;

/// <summary>
/// Runs a rule from <c>LearningRules</c> (<c>es</c>, <c>guided-es</c>, <c>dfa</c>) inside the training loop, so those rules get
/// the loop's data, schedule, trainable selection (full, freeze, LoRA), checkpoints and memory measurement.
/// <list type="bullet">
/// <item>The rules see the run's trainable parameters only: ES perturbs exactly those (LoRA adapters under <c>--method lora</c>).</item>
/// <item>DFA taps every decoder block output of <see cref="LlamaForCausalLM"/>: the block sees a detached input and gets e·B_i.</item>
/// <item>Micro-batches: the step's micro-batches are concatenated into one batch, so every ES member is scored on the same
/// effective batch backprop averages over (forward memory grows with <c>--grad-accum</c>; keep it 1 for the smallest peak).</item>
/// <item>Updates go through the loop's optimizer at the scheduled learning rate, after the loop's gradient clip. Exception:
/// <c>--rule es --optimizer sgd</c> is MeZO-style: the rule updates θ in place pair by pair (no .grad, no estimate vector,
/// no optimizer state; weight decay is not applied).</item>
/// <item>Checkpoints: the step index (noise seeds are (seed, step, pair)) and Guided ES's surrogate history.</item>
/// </list>
/// </summary>
public sealed class LearningRuleAdapter : ILearningRule
{
    private readonly TrainConfig config;
    private RuleContext? ctx;
    private Rules.ILearningRule? inner;
    private LoopOptimizer? optimizer;

    public LearningRuleAdapter(TrainConfig config)
    {
        if (config.Rule is not ("es" or "guided-es" or "dfa"))
            throw new InputError("--rule", $"\"{config.Rule}\" is not a learning rule", $"Use one of: {string.Join(", ", Rules.RuleFactory.Names)}.");
        if (config.EsPairs < 1) throw new InputError("--es-pairs", $"{config.EsPairs} is not positive", "Use 1 or more antithetic pairs.");
        if (!(config.EsSigma > 0)) throw new InputError("--es-sigma", $"{config.EsSigma} is not positive", "Use e.g. 1e-2.");
        if (config.EsRank < 0) throw new InputError("--es-rank", $"{config.EsRank} is negative", "Use 0 for dense noise or a rank r >= 1 for low-rank noise.");
        if (config.EsRank > 0 && config.Rule != "es") throw new InputError("--es-rank", $"low-rank noise is an es option and the rule is {config.Rule}", "Drop --es-rank or use --rule es.");
        this.config = config;
    }

    public string Name => config.Rule;

    /// <summary>MeZO-style ES: no optimizer, no .grad (see the class summary).</summary>
    public bool Direct => config.Rule == "es" && config.Optimizer == "sgd";

    public void Initialize(RuleContext context)
    {
        ctx = context;
        var model = new LoopLossModel(context);
        optimizer = Direct ? null : new LoopOptimizer(context);
        long n = context.Trainable.Sum(t => t.Parameter.numel());
        var seed = (ulong)context.Seed;
        var settings = new Rules.RuleSettings
        {
            Rule = config.Rule,
            // Raw loss differences (MeZO's estimator): with a handful of pairs, centered ranks would reduce it to a sign.
            Es = new Rules.EsOptions { Sigma = config.EsSigma, Pairs = config.EsPairs, Shaping = Rules.FitnessShaping.None, PopulationChunkPairs = 0, Seed = seed, NoiseRank = config.EsRank },
            GuidedEs = new Rules.GuidedEsOptions { Sigma = config.EsSigma * Math.Sqrt(n), Pairs = config.EsPairs, PopulationChunkPairs = 0, Seed = seed },
            Surrogate = config.Surrogate,
            FeedbackSeed = seed + 7,
        };
        inner = Rules.RuleFactory.Create(settings, model, optimizer);
    }

    public StepOutcome Step(StepInput input)
    {
        var rule = inner ?? throw new InvalidOperationException("Initialize the rule before stepping.");
        optimizer?.Prepare(input.LearningRate, input.ClipNorm);
        switch (rule)
        {
            case Rules.EsRule es:
                es.StepIndex = input.Step;
                es.DirectLearningRate = input.LearningRate;
                break;
            case Rules.GuidedEsRule ges:
                ges.StepIndex = input.Step;
                break;
        }
        var batches = Enumerable.Range(0, input.MicroBatches).Select(input.MicroBatch).ToList();
        var batch = batches.Count == 1
            ? new Rules.Batch(batches[0].Input, batches[0].Target)
            : new Rules.Batch(cat(batches.Select(b => b.Input).ToList(), 0), cat(batches.Select(b => b.Target).ToList(), 0));
        // ES compares f(θ+ε) with f(θ−ε): dropout would draw different masks for the two and drown the difference.
        bool forwardOnly = config.Rule is "es" or "guided-es";
        bool wasTraining = ctx!.Model.training;
        if (forwardOnly) ctx.Model.eval();
        var result = rule.Step(batch);
        if (forwardOnly && wasTraining) ctx.Model.train();
        return new StepOutcome(result.Loss, result.ForwardPasses * input.MicroBatches, optimizer?.LastGradNorm);
    }

    public Dictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>();
        if (inner is Rules.GuidedEsRule ges)
            for (int i = 0; i < ges.History.Count; i++) state[$"surrogate_history/{i}"] = ges.History[i];
        return state;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        if (inner is Rules.GuidedEsRule ges)
            ges.LoadHistory(state.Where(kv => kv.Key.StartsWith("surrogate_history/", StringComparison.Ordinal))
                .OrderBy(kv => int.Parse(kv.Key["surrogate_history/".Length..], System.Globalization.CultureInfo.InvariantCulture)).Select(kv => kv.Value));
    }

    public void Dispose()
    {
        inner?.Dispose();
        optimizer?.Dispose();
    }

    /// <summary>The loop's model and loss seen as a rule's loss model; DFA taps go through <see cref="LlamaForCausalLM.Forward(Tensor, Func{Tensor, Tensor})"/>.</summary>
    private sealed class LoopLossModel(RuleContext ctx) : Rules.IFeedbackModel
    {
        public IReadOnlyList<Parameter> TrainableParameters { get; } = ctx.Trainable.Select(t => t.Parameter).ToList();

        public Tensor Loss(Rules.Batch batch) => ctx.Loss(ctx.Model.call(batch.Inputs), batch.Targets);

        public Tensor Loss(Rules.Batch batch, Rules.IFeedbackTap tap)
        {
            var llama = ctx.Model as LlamaForCausalLM
                ?? throw new InputError("--rule", $"DFA needs a Llama-style decoder and this model is {ctx.Model.GetType().Name}", "Use --rule backprop or es.");
            return ctx.Loss(tap.Output(llama.Forward(batch.Inputs, tap.Hidden)), batch.Targets);
        }
    }

    /// <summary>The loop's optimizer behind TorchSharp's optimizer type the rules step: clip, then step at the scheduled rate.</summary>
    private sealed class LoopOptimizer(RuleContext ctx) : OptimizerHelper
    {
        private double lr;
        private double? clip;

        public double? LastGradNorm { get; private set; }

        public void Prepare(double learningRate, double? clipNorm) => (lr, clip, LastGradNorm) = (learningRate, clipNorm, null);

        public override Tensor step(Func<Tensor>? closure = null)
        {
            if (clip is { } c) LastGradNorm = nn.utils.clip_grad_norm_(ctx.Trainable.Select(t => t.Parameter), c);
            ctx.Optimizer.Step(lr);
            return null!;
        }
    }
}
