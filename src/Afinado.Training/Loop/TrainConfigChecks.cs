using Afinado.Planner;
using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

namespace Afinado.Training.Loop;

/// <summary>
/// Range, finiteness and consistency of a <see cref="TrainConfig"/>, checked before a run touches its folder, its data
/// or the model. Errors are <see cref="InputError"/>s naming the flag that sets the field; doubtful but runnable choices
/// come back as warnings for the caller to print.
/// </summary>
public static class TrainConfigChecks
{
    /// <summary>Largest values accepted: far beyond any run this CPU trainer makes, small enough to rule out typos and overflow.</summary>
    public const int MaxSteps = 100_000_000, MaxBatch = 65_536, MaxSeq = 1 << 20, MaxThreads = 4096, MaxEvalBatches = 1_000_000;

    /// <summary>Learning rates above this are refused; between <see cref="UsualMaxLearningRate"/> and it they only warn
    /// (divergence tests deliberately train at 1e12 to reach the NaN stop).</summary>
    public const double MaxLearningRate = 1e15, UsualMaxLearningRate = 10;

    /// <summary>Throws on a value no run can use; returns warnings (without a "warning:" prefix) for ones that run but look wrong.</summary>
    public static IReadOnlyList<InputText> Validate(TrainConfig c)
    {
        InputRange.Whole(TrainParameters.MaxSteps, c.MaxSteps, 1, MaxSteps);
        InputRange.Whole(TrainParameters.BatchSize, c.BatchSize, 1, MaxBatch);
        InputRange.Whole(TrainParameters.SequenceLength, c.SequenceLength, 2, MaxSeq, "a sequence needs an input and a next token");
        InputRange.Whole(TrainParameters.GradientAccumulation, c.GradientAccumulation, 1, 1_000_000);
        InputRange.Real(TrainParameters.LearningRate, c.LearningRate, 0, MaxLearningRate, minOpen: true, hint: "e.g. 1e-3");
        InputRange.Real(TrainParameters.MinLearningRate, c.MinLearningRate, 0, MaxLearningRate, hint: $"the cosine decay's floor, e.g. a tenth of {TrainParameters.LearningRate}");
        InputRange.Whole(TrainParameters.WarmupSteps, c.WarmupSteps, 0, MaxSteps, "0 turns warmup off");
        InputRange.Real(TrainParameters.WeightDecay, c.WeightDecay, 0, 10, hint: "0 turns it off; 0.01–0.1 is usual");
        InputRange.Real(TrainParameters.Momentum, c.Momentum, 0, 1, maxOpen: true, hint: "0.9 is usual");
        InputRange.Real("beta1", c.Beta1, 0, 1, maxOpen: true);
        InputRange.Real("beta2", c.Beta2, 0, 1, maxOpen: true);
        InputRange.Real("epsilon", c.Epsilon, 0, 1, minOpen: true);
        InputRange.Real(TrainParameters.ClipNorm, c.ClipNorm, 0, 1e6, minOpen: true, hint: "0 on the command line turns clipping off");
        InputRange.Whole(TrainParameters.LoraRank, c.LoraRank, 1, 65_536, "8–64 is usual");
        InputRange.Real(TrainParameters.LoraAlpha, c.LoraAlpha, 0, 1e6, minOpen: true, hint: "commonly 2 × rank");
        InputRange.Real(TrainParameters.LoraDropout, c.LoraDropout, 0, 1, maxOpen: true);
        InputRange.Whole(TrainParameters.EsPairs, c.EsPairs, 1, 100_000);
        // Below 1e-6 a perturbation is lost in fp32 weights of order 1 (machine epsilon 1.2e-7), and a double sigma cast
        // to fp32 can reach 0, where the estimate divides by zero.
        InputRange.Real(TrainParameters.EsSigma, c.EsSigma, 1e-6, 1, hint: "1e-3 to 1e-2 is usual");
        InputRange.Whole(TrainParameters.EsRank, c.EsRank, 0, 65_536, "0 = dense Gaussian noise");
        InputRange.Whole(TrainParameters.EvalEvery, c.EvalEvery, 0, MaxSteps, "0 evaluates once, at the end");
        InputRange.Whole(TrainParameters.EvalBatches, c.EvalBatches, 1, MaxEvalBatches);
        InputRange.Whole(TrainParameters.CheckpointEvery, c.CheckpointEvery, 0, MaxSteps, "0 checkpoints only at the end or on interrupt");
        InputRange.Whole(TrainParameters.Threads, c.Threads, 1, MaxThreads);
        // The planner's types hold more than this CPU trainer runs (QLoRA, es-direct as a rule, 8-bit optimizers, flash):
        // each is refused by the flag that would set it.
        Supported(TrainParameters.Method, c.Method, TrainVocabulary.Methods, InputText.When(c.Method == Planner.Selection.TrainingMethod.QLora, "QLoRA's NF4 kernels need CUDA: use lora on the CPU."));
        Supported(TrainParameters.Rule, c.Rule, TrainVocabulary.Rules, InputText.When(c.Rule == Planner.Memory.LearningRule.EsDirect, $"Direct (MeZO-style) ES is {TrainParameters.Rule} es {TrainParameters.Optimizer} sgd."));
        Supported(TrainParameters.Optimizer, c.Optimizer, TrainVocabulary.Optimizers, null);
        Supported(TrainParameters.Attention, c.Attention, TrainVocabulary.AttentionKernels, null);

        var warnings = new List<InputText>();
        if (c.LearningRate > UsualMaxLearningRate)
            warnings.Add($"{TrainParameters.LearningRate} {c.LearningRate:G3} is far above any usual learning rate: expect the loss to diverge");
        if (c.WarmupSteps >= c.MaxSteps)
            warnings.Add($"{TrainParameters.WarmupSteps} {c.WarmupSteps} is not below {TrainParameters.MaxSteps} {c.MaxSteps}: the learning rate never reaches {TrainParameters.LearningRate} {c.LearningRate:G3} nor decays");
        if (c.MinLearningRate > c.LearningRate)
            warnings.Add($"{TrainParameters.MinLearningRate} {c.MinLearningRate:G3} is above {TrainParameters.LearningRate} {c.LearningRate:G3}: the cosine schedule rises instead of decaying");
        return warnings;
    }

    private static void Supported<T>(InputParameter flag, T value, IReadOnlyList<(T Value, string Word)> words, InputText? hint) where T : struct, Enum
    {
        if (words.Any(w => EqualityComparer<T>.Default.Equals(w.Value, value))) return;
        throw new InputError(flag, $"{value} is not something the CPU trainer runs", hint ?? $"Use one of: {string.Join(", ", words.Select(w => w.Word))}.");
    }

    /// <summary>Checks what depends on the model: the sequence must fit its position table.</summary>
    public static void Validate(TrainConfig c, ModelArchitecture arch)
    {
        if (c.SequenceLength > arch.MaxPositionEmbeddings)
            throw new InputError(TrainParameters.SequenceLength, $"{c.SequenceLength} is beyond the model's max_position_embeddings ({arch.MaxPositionEmbeddings})",
                $"Use {TrainParameters.SequenceLength} {arch.MaxPositionEmbeddings} or less.");
    }
}
