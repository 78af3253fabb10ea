using System.CommandLine;
using Afinado.Planner.Inputs;
using Afinado.Training.Loop;

namespace Afinado.Cli.Commands;

/// <summary>
/// The flags shared by <c>train</c> and <c>pretrain</c>. Every flag is optional and overrides the recipe (or the
/// defaults) only when given, so <c>--recipe fortunes-es --max-steps 5</c> is the recipe with 5 steps.
/// </summary>
internal sealed class TrainOptions
{
    public readonly Option<string?> Model = new("--model") { Description = "Base model folder (config.json + model.safetensors) or, for random init, a config.json." };
    public readonly Option<string?> Data = new("--data") { Description = "fortunes-en, fortunes-es, or a .txt/.jsonl file." };
    public readonly Option<string?> Category = new("--category") { Description = "English fortune category only (e.g. science)." };
    public readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "model (the base folder's own tokenizer.json; the default when it has one), byte (256 ids) or gpt2 (50,257-id BPE)." };
    public readonly Option<int?> Seq = new("--seq") { Description = "Sequence length in tokens." };
    public readonly Option<int?> Batch = new("--batch") { Description = "Micro-batch size (sequences)." };
    public readonly Option<int?> GradAccum = new("--grad-accum") { Description = "Micro-batches per optimizer step." };
    public readonly Option<int?> MaxSteps = new("--max-steps") { Description = "Optimizer steps to run (also the end of the cosine schedule)." };
    public readonly Option<string?> Optimizer = new("--optimizer") { Description = "adamw, sgd or momentum." };
    public readonly Option<double?> Lr = new("--lr") { Description = "Peak learning rate (after warmup)." };
    public readonly Option<double?> MinLr = new("--min-lr") { Description = "Learning rate at the end of the cosine decay." };
    public readonly Option<int?> Warmup = new("--warmup") { Description = "Linear warmup steps." };
    public readonly Option<double?> WeightDecay = new("--weight-decay") { Description = "Decoupled (AdamW) or L2 (SGD) weight decay." };
    public readonly Option<double?> Momentum = new("--momentum") { Description = "Momentum for --optimizer momentum." };
    public readonly Option<double?> ClipNorm = new("--clip-norm") { Description = "Global gradient-norm clip (0 = off)." };
    public readonly Option<string?> Method = new("--method") { Description = "full, freeze or lora." };
    public readonly Option<string[]> Freeze = new("--freeze") { Description = "Glob of tensors to freeze (repeatable), e.g. 'model.layers.{0..1}'.", AllowMultipleArgumentsPerToken = false };
    public readonly Option<int?> LoraRank = new("--lora-rank") { Description = "LoRA rank r." };
    public readonly Option<double?> LoraAlpha = new("--lora-alpha") { Description = "LoRA alpha (scaling = alpha / r)." };
    public readonly Option<double?> LoraDropout = new("--lora-dropout") { Description = "Dropout on the LoRA input." };
    public readonly Option<string?> LoraTargets = new("--lora-targets") { Description = "Comma-separated modules (q_proj,v_proj) or all-linear." };
    public readonly Option<string?> Rule = new("--rule") { Description = "Learning rule: backprop, es, guided-es or dfa (es with --optimizer sgd = MeZO-style in-place update)." };
    public readonly Option<int?> EsPairs = new("--es-pairs") { Description = "ES/Guided ES antithetic pairs per step (2 forward passes each; memory does not grow with it)." };
    public readonly Option<double?> EsSigma = new("--es-sigma") { Description = "ES perturbation scale per coordinate." };
    public readonly Option<int?> EsRank = new("--es-rank") { Description = "ES noise rank: 0 = dense Gaussian (default); r >= 1 = low-rank sigma*A*B^T/sqrt(r) per weight matrix (EGGROLL)." };
    public readonly Option<string?> Surrogate = new("--surrogate") { Description = "Guided ES surrogate gradient: dfa or stale-backprop." };
    public readonly Option<string?> Attention = new("--attention") { Description = "sdpa (fused) or eager (explicit scores)." };
    public readonly Option<bool> GradientCheckpointing = new("--gradient-checkpointing") { Description = "Recompute each block's activations in backward." };
    public readonly Option<int?> EvalEvery = new("--eval-every") { Description = "Evaluate every N steps." };
    public readonly Option<int?> EvalBatches = new("--eval-batches") { Description = "Validation batches per evaluation." };
    public readonly Option<int?> CheckpointEvery = new("--checkpoint-every") { Description = "Checkpoint every N steps." };
    public readonly Option<int?> Threads = new("--threads") { Description = "libtorch threads (default: one per core; use 1 on a busy shared machine)." };
    public readonly Option<long?> Seed = new("--seed") { Description = "Seed for init, data order and dropout." };
    public readonly Option<string?> Out = new("--out") { Description = "Run folder (checkpoints, model, summary.json)." };
    public readonly Option<bool> Json = new("--json") { Description = "Print summary.json (schema afinado.run/1) to stdout; progress stays on stderr." };

    public void AddTo(Command cmd)
    {
        ShowDefaults();
        foreach (var o in new Option[] { Model, Data, Category, Tokenizer, Seq, Batch, GradAccum, MaxSteps, Optimizer, Lr, MinLr, Warmup, WeightDecay,
                     Momentum, ClipNorm, Method, Freeze, LoraRank, LoraAlpha, LoraDropout, LoraTargets, Rule, EsPairs, EsSigma, EsRank, Surrogate, Attention, GradientCheckpointing,
                     EvalEvery, EvalBatches, CheckpointEvery, Threads, Seed, Out, Json })
            cmd.Options.Add(o);
    }

    /// <summary>
    /// The flags are nullable (a recipe's values apply unless the flag is given), so System.CommandLine cannot show their
    /// defaults; each description names the default of a run without a recipe, read from <see cref="TrainConfig"/>.
    /// </summary>
    private void ShowDefaults()
    {
        var d = new TrainConfig { ModelConfigJson = "", Data = "" };
        static string F(double v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        var defaults = new (Option Option, string Value)[]
        {
            (Tokenizer, $"model when the base folder has tokenizer.json, else {d.Tokenizer}"), (Seq, $"{d.SequenceLength}"), (Batch, $"{d.BatchSize}"),
            (GradAccum, $"{d.GradientAccumulation}"), (MaxSteps, $"{d.MaxSteps}"), (Optimizer, $"{TrainVocabulary.Word(d.Optimizer)} (sgd with --rule es)"),
            (Lr, $"{F(d.LearningRate)} ({F(TrainConfig.EsDirectLearningRate)} with --rule es)"), (MinLr, F(d.MinLearningRate)), (Warmup, $"{d.WarmupSteps}"),
            (WeightDecay, F(d.WeightDecay)), (Momentum, F(d.Momentum)), (ClipNorm, d.ClipNorm is { } clip ? F(clip) : "0"), (Method, TrainVocabulary.Word(d.Method)),
            (LoraRank, $"{d.LoraRank}"), (LoraAlpha, F(d.LoraAlpha)), (LoraDropout, F(d.LoraDropout)), (LoraTargets, string.Join(",", d.LoraTargets)),
            (Rule, TrainVocabulary.Word(d.Rule)), (EsPairs, $"{d.EsPairs}"), (EsSigma, F(d.EsSigma)), (EsRank, $"{d.EsRank}"), (Surrogate, d.Surrogate), (Attention, TrainVocabulary.Word(d.Attention)),
            (EvalEvery, $"{d.EvalEvery}"), (EvalBatches, $"{d.EvalBatches}"), (CheckpointEvery, $"{d.CheckpointEvery}"), (Seed, $"{d.Seed}"),
        };
        foreach (var (option, value) in defaults)
            if (option.Description is { } text && !text.Contains("[default:", StringComparison.Ordinal))
                option.Description = $"{text} [default: {value}; a recipe sets its own]";
    }

    /// <summary>Applies the flags that were given on top of <paramref name="c"/>.</summary>
    public TrainConfig Apply(ParseResult p, TrainConfig c)
    {
        // --rule es without --optimizer: MeZO-style in-place SGD (no .grad, no optimizer state) at the ES learning rate,
        // since the recipes' Adam rates are far too small for the raw ES estimate.
        var rule = p.GetValue(Rule) is { } r ? TrainVocabulary.Rule(r) : c.Rule;
        bool esDefaults = rule == Afinado.Planner.Memory.LearningRule.Es && p.GetValue(Optimizer) is null;
        var model = p.GetValue(Model);
        if (model is not null)
        {
            if (Directory.Exists(model))
            {
                var cfg = Path.Combine(model, "config.json");
                if (!File.Exists(cfg))
                    throw new InputError("--model", $"folder \"{model}\" has no config.json", "Point --model at a Hugging Face model folder.");
                c = c with { BaseModel = Path.GetFullPath(model), ModelConfigJson = InputFile.ReadAllText(cfg, InputKind.Config, "--model") };
            }
            else if (File.Exists(model)) c = c with { BaseModel = null, ModelConfigJson = InputFile.ReadAllText(model, InputKind.Config, "--model") };
            else throw new InputError("--model", $"\"{model}\" is neither a folder nor a config.json", "Give a model folder or a config.json path.");
        }
        var freeze = p.GetValue(Freeze);
        var targets = p.GetValue(LoraTargets);
        // Flag-only meanings are checked here (0 = clipping off; the machine's core count); the merged config is
        // checked as a whole by TrainConfigChecks, which the run repeats before it starts.
        InputRange.Real("--clip-norm", p.GetValue(ClipNorm), 0, 1e6, hint: "0 turns clipping off");
        InputRange.Whole("--threads", p.GetValue(Threads), 1, Environment.ProcessorCount, $"this machine has {Environment.ProcessorCount} cores; more threads only wait on each other");
        var merged = c with
        {
            Data = p.GetValue(Data) ?? c.Data,
            Category = p.GetValue(Category) ?? c.Category,
            // A base folder with its own tokenizer.json is tokenized by it unless the flag says otherwise (and then refused).
            Tokenizer = p.GetValue(Tokenizer) ?? (Afinado.Training.Tokenization.HfTokenizer.In(c.BaseModel) ? "model" : c.Tokenizer),
            SequenceLength = p.GetValue(Seq) ?? c.SequenceLength,
            BatchSize = p.GetValue(Batch) ?? c.BatchSize,
            GradientAccumulation = p.GetValue(GradAccum) ?? c.GradientAccumulation,
            MaxSteps = p.GetValue(MaxSteps) ?? c.MaxSteps,
            Optimizer = p.GetValue(Optimizer) is { } o ? TrainVocabulary.Optimizer(o) : esDefaults ? Afinado.Planner.Memory.OptimizerKind.Sgd : c.Optimizer,
            LearningRate = p.GetValue(Lr) ?? (esDefaults ? TrainConfig.EsDirectLearningRate : c.LearningRate),
            MinLearningRate = p.GetValue(MinLr) ?? (esDefaults ? TrainConfig.EsDirectLearningRate / 10 : c.MinLearningRate),
            WarmupSteps = p.GetValue(Warmup) ?? c.WarmupSteps,
            WeightDecay = p.GetValue(WeightDecay) ?? c.WeightDecay,
            Momentum = p.GetValue(Momentum) ?? c.Momentum,
            ClipNorm = p.GetValue(ClipNorm) is { } clip ? (clip > 0 ? clip : null) : c.ClipNorm,
            Method = p.GetValue(Method) is { } m ? TrainVocabulary.Method(m) : c.Method,
            Freeze = freeze is { Length: > 0 } ? freeze : c.Freeze,
            LoraRank = p.GetValue(LoraRank) ?? c.LoraRank,
            LoraAlpha = p.GetValue(LoraAlpha) ?? c.LoraAlpha,
            LoraDropout = p.GetValue(LoraDropout) ?? c.LoraDropout,
            LoraTargets = targets is null ? c.LoraTargets : targets.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Rule = rule,
            EsPairs = p.GetValue(EsPairs) ?? c.EsPairs,
            EsSigma = p.GetValue(EsSigma) ?? c.EsSigma,
            EsRank = p.GetValue(EsRank) ?? c.EsRank,
            Surrogate = p.GetValue(Surrogate) ?? c.Surrogate,
            Attention = p.GetValue(Attention) is { } a ? TrainVocabulary.Attention(a) : c.Attention,
            GradientCheckpointing = p.GetValue(GradientCheckpointing) || c.GradientCheckpointing,
            EvalEvery = p.GetValue(EvalEvery) ?? c.EvalEvery,
            EvalBatches = p.GetValue(EvalBatches) ?? c.EvalBatches,
            CheckpointEvery = p.GetValue(CheckpointEvery) ?? c.CheckpointEvery,
            Seed = p.GetValue(Seed) ?? c.Seed,
            Threads = p.GetValue(Threads) ?? c.Threads,
        };
        TrainConfigChecks.Validate(merged);
        return merged;
    }
}
