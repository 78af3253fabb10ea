namespace Afinado.Training.LearningRules;

/// <summary>
/// A way of turning one batch into one parameter update. The training loop calls <see cref="Step"/> once per batch and
/// does not know which rule runs: backprop, OpenAI-ES, Guided ES or DFA all fit behind this interface.
/// </summary>
public interface ILearningRule : IDisposable
{
    /// <summary>The rule's CLI name: <c>backprop</c>, <c>es</c>, <c>guided-es</c> or <c>dfa</c>.</summary>
    string Name { get; }

    /// <summary>Runs one update on <paramref name="batch"/>. The caller owns the batch tensors and the dispose scope.</summary>
    RuleStepResult Step(Batch batch);

    /// <summary>Work done so far, summed over all steps.</summary>
    RuleCounters Counters { get; }
}

/// <summary>One minibatch: model inputs and the targets the loss compares against.</summary>
public readonly record struct Batch(TorchSharp.torch.Tensor Inputs, TorchSharp.torch.Tensor Targets);

/// <summary>
/// What one step observed. <see cref="Loss"/> is the loss the rule measured before its update (for ES: the mean over the
/// perturbed members, which is within O(σ²) of the loss at θ).
/// </summary>
public readonly record struct RuleStepResult(double Loss, long ForwardPasses, long BackwardPasses);

/// <summary>
/// Cumulative work. A forward pass is one evaluation of the model on a whole batch (an ES population of 2P members costs
/// 2P passes even when evaluated in one batched call); the same for backward passes.
/// </summary>
public sealed class RuleCounters
{
    public long Steps { get; private set; }
    public long ForwardPasses { get; private set; }
    public long BackwardPasses { get; private set; }

    internal RuleStepResult Record(RuleStepResult r)
    {
        Steps++;
        ForwardPasses += r.ForwardPasses;
        BackwardPasses += r.BackwardPasses;
        return r;
    }
}
