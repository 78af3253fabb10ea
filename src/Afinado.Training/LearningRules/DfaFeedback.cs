using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// The fixed random feedback matrices B_i of Direct Feedback Alignment, one per hidden output, shaped
/// [output features, hidden features] so that the hidden error is e·B_i. Drawn once, lazily on first use, uniform in
/// [−1/√N, 1/√N] with N the hidden features (anokland/dfa-torch ErrorFeedback.lua), from a seed of their own.
/// </summary>
public sealed class DfaFeedback : IDisposable
{
    private readonly ulong _seed;
    private readonly List<Tensor?> _matrices = new();

    public DfaFeedback(ulong seed) => _seed = seed;

    public int Count => _matrices.Count(m => m is not null);

    /// <summary>Bytes held by the feedback matrices (they are buffers, never trained).</summary>
    public long Bytes => _matrices.Where(m => m is not null).Sum(m => m!.numel() * m.element_size());

    /// <summary>Replaces B_index (tests use B_1 = W_2 to recover backprop exactly).</summary>
    public void Set(int index, Tensor matrix)
    {
        while (_matrices.Count <= index) _matrices.Add(null);
        _matrices[index]?.Dispose();
        _matrices[index] = matrix.detach().clone().DetachFromDisposeScope();
    }

    public Tensor Get(int index, long outFeatures, long hiddenFeatures, ScalarType dtype)
    {
        while (_matrices.Count <= index) _matrices.Add(null);
        var b = _matrices[index];
        if (b is null)
        {
            using var gen = MemberNoise.GeneratorFor(_seed, -1, index);
            double bound = 1.0 / Math.Sqrt(hiddenFeatures);
            b = empty(outFeatures, hiddenFeatures, dtype: dtype).uniform_(-bound, bound, gen).DetachFromDisposeScope();
            _matrices[index] = b;
        }
        if (b.shape[0] != outFeatures || b.shape[1] != hiddenFeatures)
            throw new InvalidOperationException($"DFA feedback B_{index} is [{b.shape[0]}, {b.shape[1]}] but the network now needs [{outFeatures}, {hiddenFeatures}]");
        return b;
    }

    public void Dispose()
    {
        foreach (var m in _matrices) m?.Dispose();
        _matrices.Clear();
    }
}

/// <summary>
/// The DFA interception for one forward pass. <see cref="Hidden"/> records h_i and hands the next layer h_i.detach(),
/// so there is no inter-layer graph. <see cref="Output"/> joins the output y and all recorded h_i in one custom autograd
/// node whose backward receives e = ∂L/∂y and returns e for y and e·B_i for each h_i; autograd then applies f′(a_i)
/// and forms each layer's local weight gradient. One <c>loss.backward()</c> does it all.
/// </summary>
public sealed class DfaTap : IFeedbackTap
{
    private readonly DfaFeedback _feedback;
    private readonly List<Tensor> _hidden = new();

    public DfaTap(DfaFeedback feedback) => _feedback = feedback;

    public Tensor Hidden(Tensor h)
    {
        _hidden.Add(h);
        return h.detach();
    }

    public Tensor Output(Tensor y)
    {
        long outFeatures = y.shape[^1];
        long rows = y.numel() / outFeatures;
        var args = new List<object> { y, new DfaInject.Feedback(_feedback, outFeatures, rows) };
        foreach (var h in _hidden)
        {
            if (h.numel() % rows != 0) throw new InvalidOperationException($"hidden output of {h.numel()} values cannot be split into the {rows} rows of the output error");
            args.Add(h);
        }
        return DfaInject.apply(args.ToArray());
    }
}

/// <summary>Identity on y in forward; in backward routes e to y and e·B_i to each hidden input (see <see cref="DfaTap"/>).</summary>
internal sealed class DfaInject : autograd.SingleTensorFunction<DfaInject>
{
    internal sealed record Feedback(DfaFeedback Matrices, long OutFeatures, long Rows);

    public override string Name => nameof(DfaInject);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var fb = (Feedback)vars[1];
        var shapes = vars.Skip(2).Select(v => ((Tensor)v).shape).ToList();
        ctx.save_data("feedback", fb);
        ctx.save_data("shapes", shapes);
        ctx.save_data("dtype", ((Tensor)vars[0]).dtype);
        return ((Tensor)vars[0]).alias();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var fb = (Feedback)ctx.get_data("feedback");
        var shapes = (List<long[]>)ctx.get_data("shapes");
        var dtype = (ScalarType)ctx.get_data("dtype");
        var e = gradOutput.reshape(fb.Rows, fb.OutFeatures);
        var grads = new List<Tensor> { gradOutput, null! };
        for (int i = 0; i < shapes.Count; i++)
        {
            long features = shapes[i].Aggregate(1L, (a, b) => a * b) / fb.Rows;
            var b = fb.Matrices.Get(i, fb.OutFeatures, features, dtype);
            grads.Add(e.matmul(b).view(shapes[i]));
        }
        return grads;
    }
}
