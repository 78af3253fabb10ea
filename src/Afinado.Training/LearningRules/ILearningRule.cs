using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// A way of turning one step's data into one parameter update: backprop, OpenAI-ES, Guided ES and DFA all fit behind
/// this interface, and every host (the language-model training loop, the Fashion-MNIST bench, the Guided ES toy, the
/// split recipes `afinado eval` scores) drives them through it without knowing which runs. A rule is a pure function of the step it
/// is given (its noise is drawn from (seed, step index, pair)), so a resumed run continues bit for bit.
/// </summary>
public interface ILearningRule : IDisposable
{
    /// <summary>The rule's CLI name: <c>backprop</c>, <c>es</c>, <c>guided-es</c> or <c>dfa</c>.</summary>
    string Name { get; }

    /// <summary>
    /// One update. The caller owns the step's tensors and a dispose scope around the call; tensors the rule keeps across
    /// steps are detached from scopes. If the measured loss is NaN or infinite, a rule that can tell before updating
    /// (backprop) leaves the parameters untouched; the host stops on it.
    /// </summary>
    RuleStepResult Step(RuleStep step);

    /// <summary>Work done so far, summed over all steps.</summary>
    RuleCounters Counters { get; }

    /// <summary>Rule-specific state to checkpoint (Guided ES's surrogate history); the optimizer's is saved by the host.</summary>
    Dictionary<string, Tensor> StateDict() => [];

    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) { }
}

/// <summary>One minibatch: model inputs and the targets the loss compares against.</summary>
public readonly record struct Batch(Tensor Inputs, Tensor Targets);

/// <summary>
/// What a rule is asked to do in one step.
/// </summary>
/// <param name="Index">0-based step index: ES noise is drawn from (seed, <paramref name="Index"/>, pair), stale surrogates
/// refresh on it.</param>
/// <param name="LearningRate">The scheduled rate the optimizer (or direct ES) steps at.</param>
/// <param name="MicroBatches">Micro-batches of the step (gradient accumulation).</param>
/// <param name="MicroBatch">The m-th micro-batch, made on demand so that backprop holds one at a time; a pure function of
/// the host's seed, the step and m.</param>
/// <param name="ClipNorm">Global gradient-norm clip applied before the optimizer steps, or null.</param>
public sealed record RuleStep(long Index, double LearningRate, int MicroBatches, Func<int, Batch> MicroBatch, double? ClipNorm = null)
{
    /// <summary>A step over one batch.</summary>
    public static RuleStep Of(long index, double learningRate, Batch batch, double? clipNorm = null) =>
        new(index, learningRate, 1, _ => batch, clipNorm);

    /// <summary>
    /// All micro-batches as one batch, for rules that score a population or a feedback pass on the step's whole data:
    /// every ES member sees the same effective batch backprop averages over (forward memory grows with the micro-batch
    /// count).
    /// </summary>
    internal Batch Whole()
    {
        if (MicroBatches == 1) return MicroBatch(0);
        var parts = Enumerable.Range(0, MicroBatches).Select(MicroBatch).ToList();
        return new Batch(cat(parts.Select(b => b.Inputs).ToList(), 0), cat(parts.Select(b => b.Targets).ToList(), 0));
    }
}

/// <summary>
/// What one step observed. <see cref="Loss"/> is the loss the rule measured before its update (for ES: the mean over the
/// perturbed members, which is within O(σ²) of the loss at θ); passes are counted in micro-batches (an ES population of
/// 2P members over two micro-batches costs 4P forward passes); <see cref="GradNorm"/> is the norm before clipping when the
/// step clipped.
/// </summary>
public readonly record struct RuleStepResult(double Loss, long ForwardPasses, long BackwardPasses, double? GradNorm = null);

/// <summary>
/// Cumulative work. A forward pass is one evaluation of the model on one micro-batch (an ES population of 2P members
/// costs 2P passes even when evaluated in one batched call); the same for backward passes.
/// </summary>
public sealed class RuleCounters
{
    public long Steps { get; private set; }
    public long ForwardPasses { get; private set; }
    public long BackwardPasses { get; private set; }
    /// <summary>The most bytes of <c>.grad</c> tensors a step held when its optimizer stepped (measured, not planned): the
    /// gradients are dropped at the end of each step, so this is where a host can still see them.</summary>
    public long PeakGradientBytes { get; private set; }

    internal void RecordGradients(long bytes) => PeakGradientBytes = Math.Max(PeakGradientBytes, bytes);

    internal RuleStepResult Record(RuleStepResult r)
    {
        Steps++;
        ForwardPasses += r.ForwardPasses;
        BackwardPasses += r.BackwardPasses;
        return r;
    }
}
