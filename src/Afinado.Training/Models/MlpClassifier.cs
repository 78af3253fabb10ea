using Afinado.Training.LearningRules;
using Afinado.Training.Recipes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Afinado.Training.Models;

/// <summary>
/// The project's one fully connected classifier (Linear–ReLU–…–Linear, cross-entropy): the class-split recipe's base,
/// finetune and last-layer alternative, and the learning-rule bench's MLP rows. It supports every learning rule: an
/// ordinary loss for backprop, hidden-output taps for DFA, and batched population losses (stacked weights + bmm) for ES.
/// Inputs of any shape [N, …] are flattened. The layers are named <c>fc1</c> … <c>fcN</c> (in a weights file:
/// <c>fc1.weight</c>, <c>fc1.bias</c>, …), so "last layer only" means the last <c>fcN</c>.
/// </summary>
public sealed class MlpClassifier : Module<Tensor, Tensor>, IPopulationLossModel, ILowRankPopulationLossModel, IFeedbackModel
{
    private readonly List<Linear> _layers = [];

    /// <param name="widths">input, hidden…, output; e.g. [784, 128, 10].</param>
    public MlpClassifier(IReadOnlyList<int> widths) : base(nameof(MlpClassifier))
    {
        if (widths.Count < 2 || widths.Any(w => w < 1)) throw new ArgumentException("need at least input and output widths, all ≥ 1", nameof(widths));
        Widths = widths.ToArray();
        // Created in order, so a seeded model starts from the same weights whatever holds it; registered by name.
        for (int i = 0; i + 1 < widths.Count; i++)
        {
            var layer = Linear(widths[i], widths[i + 1]);
            _layers.Add(layer);
            register_module($"fc{i + 1}", layer);
        }
    }

    /// <summary>The prefix of the last layer's parameters (<c>fc2.</c> for one hidden layer).</summary>
    public string LastLayerPrefix => $"fc{_layers.Count}.";

    /// <summary>Freezes everything except the last layer; returns the number of trainable parameters left.</summary>
    public long FreezeAllButLastLayer() => ModuleFreezing.TrainOnly(this, LastLayerPrefix);

    public long ParameterCount => parameters().Sum(p => p.numel());

    public int[] Widths { get; }
    public IReadOnlyList<Linear> Layers => _layers.ToList();

    /// <summary>weight, bias of each layer in order — the flat layout <see cref="PopulationLoss"/> reads.</summary>
    public IReadOnlyList<Parameter> TrainableParameters =>
        _layers.SelectMany(l => new[] { l.weight!, l.bias! }).Where(p => p.requires_grad).ToList();

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Loss(Batch batch) => functional.cross_entropy(forward(batch.Inputs), batch.Targets);

    public Tensor Loss(Batch batch, IFeedbackTap tap) => functional.cross_entropy(Forward(batch.Inputs, tap), batch.Targets);

    private Tensor Forward(Tensor x, IFeedbackTap? tap)
    {
        var h = x.reshape(x.shape[0], -1);
        for (int i = 0; i < _layers.Count; i++)
        {
            h = _layers[i].call(h);
            if (i + 1 < _layers.Count)
            {
                h = functional.relu(h);
                if (tap is not null) h = tap.Hidden(h);
            }
        }
        return tap is null ? h : tap.Output(h);
    }

    public Tensor PopulationLoss(Tensor thetas, Batch batch)
    {
        if (TrainableParameters.Count != 2 * _layers.Count) throw new NotSupportedException("batched ES evaluation needs every layer trainable");
        long c = thetas.shape[0], off = 0;
        var x = batch.Inputs;
        var h = x.reshape(1, x.shape[0], -1);                                  // [1, N, in], broadcast over members
        for (int i = 0; i < _layers.Count; i++)
        {
            long fin = Widths[i], fout = Widths[i + 1];
            var w = thetas.narrow(1, off, fout * fin).view(c, fout, fin); off += fout * fin;
            var b = thetas.narrow(1, off, fout).view(c, 1, fout); off += fout;
            h = h.matmul(w.transpose(1, 2)).add_(b);                          // [C, N, out] (bmm; baddbmm is mis-bound in 0.107)
            if (i + 1 < _layers.Count) h = h.relu_();
        }
        long n = x.shape[0], classes = Widths[^1];
        var losses = functional.cross_entropy(h.reshape(c * n, classes), batch.Targets.repeat(c), reduction: Reduction.None);
        return losses.view(c, n).mean(new long[] { 1 });
    }

    /// <summary>
    /// Low-rank population: per layer, x·Wᵀ + b is computed once (or once per member after the first layer) and member i
    /// adds ±((x·B_i)·A_iᵀ + z_i). While the input is still shared (first layer), the ± members share x·B_i too.
    /// </summary>
    public Tensor LowRankPopulationLoss(IReadOnlyList<StackedPerturbation> perturbations, Batch batch)
    {
        if (TrainableParameters.Count != 2 * _layers.Count || perturbations.Count != 2 * _layers.Count)
            throw new NotSupportedException("low-rank ES evaluation needs every layer trainable");
        var x = batch.Inputs;
        long n = x.shape[0], c = perturbations[0].A!.shape[0], classes = Widths[^1];
        var h = x.reshape(1, n, -1);                                              // [1, N, in]: shared by all members
        for (int i = 0; i < _layers.Count; i++)
        {
            var (w, b) = (perturbations[2 * i], perturbations[2 * i + 1]);
            var shared = h.matmul(_layers[i].weight!.t()).add_(_layers[i].bias!); // [1 or 2C, N, out]
            if (h.shape[0] == 1)
            {
                var delta = h.matmul(w.B!).matmul(w.A!.transpose(1, 2)).add_(b.Z!.unsqueeze(1)); // [C, N, out]
                h = cat(new[] { shared + delta, shared - delta }, 0);
            }
            else
            {
                var sa = cat(new[] { w.A!, -w.A! }, 0);
                var sb = cat(new[] { w.B!, w.B! }, 0);
                var sz = cat(new[] { b.Z!, -b.Z! }, 0);
                h = shared.add_(h.matmul(sb).matmul(sa.transpose(1, 2))).add_(sz.unsqueeze(1));
            }
            if (i + 1 < _layers.Count) h = h.relu_();
        }
        var losses = functional.cross_entropy(h.reshape(2 * c * n, classes), batch.Targets.repeat(2 * c), reduction: Reduction.None);
        return losses.view(2 * c, n).mean(new long[] { 1 });
    }
}
