using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// Activation checkpointing for one decoder block, written as a custom autograd function because TorchSharp 0.107 has
/// no <c>torch.utils.checkpoint</c>. Forward runs the block under <c>no_grad</c> and keeps only its input; backward
/// re-runs the block with grad enabled and back-propagates the incoming gradient through it (a re-entrant backward,
/// like PyTorch's <c>use_reentrant=True</c> checkpoint). Parameter gradients accumulate into <c>.grad</c> as usual.
/// The torch RNG state is captured in forward and restored for the recomputation so dropout masks match.
/// </summary>
public sealed class CheckpointedBlock : autograd.SingleTensorFunction<CheckpointedBlock>
{
    public override string Name => nameof(CheckpointedBlock);

    public static Tensor Apply(nn.Module<Tensor, Tensor> block, Tensor x) => apply(x, block);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var block = (nn.Module<Tensor, Tensor>)vars[1];
        ctx.save_data("block", block);
        using (var rngState = random.get_rng_state())
            ctx.save_data("rng", rngState.bytes.ToArray()); // bytes, not a tensor: save_data is for non-tensors
        ctx.save_for_backward(new List<Tensor> { x });
        using var _ = no_grad();
        return block.call(x);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var block = (nn.Module<Tensor, Tensor>)ctx.get_data("block");
        using var rng = tensor((byte[])ctx.get_data("rng"), dtype: ScalarType.Byte);
        var x = ctx.get_saved_variables()[0];
        using var input = x.detach().requires_grad_(true);
        var saved = random.get_rng_state();
        random.set_rng_state(rng);
        using (enable_grad())
        {
            using var y = block.call(input);
            y.backward(new List<Tensor> { gradOutput });
        }
        random.set_rng_state(saved);
        saved.Dispose();
        return new List<Tensor> { input.grad!.clone(), null! };
    }
}
