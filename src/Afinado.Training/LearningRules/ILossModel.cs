using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// The least a learning rule needs from a model: which parameters it may change and a scalar loss over a batch.
/// Frozen parameters are simply not listed, so every rule honours the trainable selection (ES perturbs only these).
/// </summary>
public interface ILossModel
{
    /// <summary>Trainable parameters, in a fixed order that defines the layout of flat parameter vectors.</summary>
    IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters { get; }

    /// <summary>Mean loss over the batch; builds the autograd graph when grad mode is on.</summary>
    Tensor Loss(Batch batch);

    /// <summary>
    /// Puts the model in its forward-only mode until disposed. ES compares f(θ+ε) with f(θ−ε): dropout would draw
    /// different masks for the two members and drown the difference, so ES rules score members in eval mode. Models with
    /// nothing stochastic in their forward keep the default (nothing to switch).
    /// </summary>
    IDisposable ForwardOnly() => NoModeSwitch.Instance;
}

/// <summary>The forward-only mode of a model that has no other mode.</summary>
internal sealed class NoModeSwitch : IDisposable
{
    public static readonly NoModeSwitch Instance = new();
    public void Dispose() { }
}

/// <summary>
/// A model that can evaluate many parameter vectors at once (stacked weights and <c>bmm</c>), so an ES population is
/// one batched call instead of one forward per member.
/// </summary>
public interface IPopulationLossModel : ILossModel
{
    /// <summary>
    /// <paramref name="thetas"/> is [C, D]: C flat parameter vectors laid out like <see cref="ILossModel.TrainableParameters"/>.
    /// Returns the C mean losses on the batch, [C]. Frozen parameters keep their current values.
    /// </summary>
    Tensor PopulationLoss(Tensor thetas, Batch batch);
}

/// <summary>
/// A model whose hidden outputs a rule may intercept: it routes every hidden layer (or block) output through
/// <see cref="IFeedbackTap.Hidden"/> and its final output through <see cref="IFeedbackTap.Output"/> before the loss.
/// DFA uses this to cut the inter-layer graph and inject the output error at each hidden output.
/// </summary>
public interface IFeedbackModel : ILossModel
{
    Tensor Loss(Batch batch, IFeedbackTap tap);
}

/// <summary>Interception points a model calls during its forward pass.</summary>
public interface IFeedbackTap
{
    /// <summary>Called with each hidden output h_i; the model continues with the returned tensor.</summary>
    Tensor Hidden(Tensor h);

    /// <summary>Called with the output (logits) before the loss; the model computes the loss from the returned tensor.</summary>
    Tensor Output(Tensor y);
}

/// <summary>
/// A model that evaluates a low-rank ES population (<see cref="LowRankNoise"/>) in one call: x·Wᵀ is computed once and each
/// member adds only its (x·B_i)·A_iᵀ term, so a member costs O(r·(in + out)) per sample instead of a full matrix product.
/// </summary>
public interface ILowRankPopulationLossModel : ILossModel
{
    /// <summary>
    /// <paramref name="perturbations"/> holds one <see cref="StackedPerturbation"/> per trainable parameter, each for the
    /// same C pairs. Returns [2C] mean losses: rows 0..C−1 at θ+ε_i, rows C..2C−1 at θ−ε_i.
    /// </summary>
    Tensor LowRankPopulationLoss(IReadOnlyList<StackedPerturbation> perturbations, Batch batch);
}
