using Afinado.Training.Optim;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Loop;

/// <summary>
/// A learning rule: how one optimisation step turns a batch into a parameter update. The training loop owns data,
/// schedule, evaluation, checkpoints, progress and memory measurement and does not know which rule runs
/// (backprop, ES, Guided ES, DFA …). Rules must be deterministic given (seed, step) so resumed runs match.
/// </summary>
public interface ILearningRule : IDisposable
{
    /// <summary>The <c>--rule</c> name, e.g. <c>backprop</c>.</summary>
    string Name { get; }

    /// <summary>Called once before the first step, with the model and what may be trained.</summary>
    void Initialize(RuleContext context);

    /// <summary>
    /// One update. Returns the training loss measured on the step's batch (before the update). If that loss is NaN or
    /// infinite the rule must leave the parameters untouched; the loop then stops and keeps the last good checkpoint.
    /// The loop runs each step inside a TorchSharp dispose scope: tensors the rule keeps across steps must be
    /// <c>DetachFromDisposeScope()</c>'d.
    /// </summary>
    StepOutcome Step(StepInput input);

    /// <summary>Rule-specific state to checkpoint (e.g. surrogate-gradient history); optimizer state is saved separately.</summary>
    Dictionary<string, Tensor> StateDict();
    void LoadStateDict(IReadOnlyDictionary<string, Tensor> state);
}

/// <param name="Model">Maps a batch input to logits.</param>
/// <param name="Trainable">The parameters the selection made trainable (named as in the state dict).</param>
/// <param name="Optimizer">Applies an update from <c>.grad</c> (backprop writes true gradients; ES writes its estimate).</param>
/// <param name="Loss">Mean loss of logits against targets (cross-entropy for every built-in task).</param>
public sealed record RuleContext(nn.Module<Tensor, Tensor> Model, IReadOnlyList<(string Name, Parameter Parameter)> Trainable,
    IOptimizer Optimizer, Func<Tensor, Tensor, Tensor> Loss, long Seed);

/// <param name="Step">0-based step index.</param>
/// <param name="MicroBatch">The step's micro-batches (gradient accumulation), a pure function of (seed, step, index).</param>
/// <param name="ClipNorm">Global gradient-norm clip, or null.</param>
public sealed record StepInput(long Step, double LearningRate, int MicroBatches, Func<int, (Tensor Input, Tensor Target)> MicroBatch, double? ClipNorm);

/// <param name="Loss">Mean training loss over the step's micro-batches.</param>
/// <param name="ForwardPasses">Forward passes over a micro-batch this step cost (1 per micro-batch for backprop; population size for ES).</param>
/// <param name="GradNorm">Gradient norm before clipping, if the rule computed one.</param>
public sealed record StepOutcome(double Loss, long ForwardPasses, double? GradNorm = null);
