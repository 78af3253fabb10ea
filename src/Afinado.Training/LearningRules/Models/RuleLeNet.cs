using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Afinado.Training.LearningRules.Models;

/// <summary>
/// LeNet-5-style CNN for 28×28 inputs (conv 6@5×5 pad 2 → pool → conv 16@5×5 → pool → 120 → 84 → 10, ReLU), the
/// network of biotorch's Fashion-MNIST BP/FA/DFA table. Each conv stage and hidden FC output is a DFA tap point.
/// The channel counts can be widened (e.g. 16/32) for a higher-capacity variant of the same layout.
/// </summary>
public sealed class RuleLeNet : Module<Tensor, Tensor>, IFeedbackModel
{
    private readonly Conv2d conv1, conv2;
    private readonly Linear fc1, fc2, fc3;

    public RuleLeNet(int conv1Channels = 6, int conv2Channels = 16) : base(nameof(RuleLeNet))
    {
        conv1 = Conv2d(1, conv1Channels, 5, padding: 2);
        conv2 = Conv2d(conv1Channels, conv2Channels, 5);
        fc1 = Linear(conv2Channels * 5 * 5, 120);
        fc2 = Linear(120, 84);
        fc3 = Linear(84, 10);
        RegisterComponents();
    }

    public IReadOnlyList<Parameter> TrainableParameters =>
        new[] { conv1.weight!, conv1.bias!, conv2.weight!, conv2.bias!, fc1.weight!, fc1.bias!, fc2.weight!, fc2.bias!, fc3.weight!, fc3.bias! }
            .Where(p => p.requires_grad).ToList();

    public override Tensor forward(Tensor x) => Forward(x, null);

    public Tensor Loss(Batch batch) => functional.cross_entropy(forward(batch.Inputs), batch.Targets);

    public Tensor Loss(Batch batch, IFeedbackTap tap) => functional.cross_entropy(Forward(batch.Inputs, tap), batch.Targets);

    private Tensor Forward(Tensor x, IFeedbackTap? tap)
    {
        Tensor Tap(Tensor h) => tap is null ? h : tap.Hidden(h);
        var h = Tap(functional.max_pool2d(functional.relu(conv1.call(x.reshape(x.shape[0], 1, 28, 28))), 2));
        h = Tap(functional.max_pool2d(functional.relu(conv2.call(h)), 2));
        h = Tap(functional.relu(fc1.call(h.flatten(1))));
        h = Tap(functional.relu(fc2.call(h)));
        var y = fc3.call(h);
        return tap is null ? y : tap.Output(y);
    }
}
