using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// Rotary position embedding in the Hugging Face Llama convention (rotate_half on the two halves of the rotated width,
/// inv_freq = θ^(−2i/d)). With a partial rotary factor only the first <c>rotaryDim</c> channels of each head rotate.
/// The cos/sin tables are cached per sequence length; they are constants, not parameters.
/// </summary>
public sealed class Rotary : IDisposable
{
    private readonly long headDim, rotaryDim;
    private readonly double theta;
    private Tensor? cos, sin;
    private long cachedLength;

    public Rotary(long headDim, double theta, double partialFactor)
    {
        this.headDim = headDim;
        this.theta = theta;
        rotaryDim = Math.Max(2, (long)(headDim * partialFactor) / 2 * 2);
    }

    /// <summary>Applies the rotation to q or k shaped [B, H, T, D].</summary>
    public Tensor Apply(Tensor x)
    {
        long t = x.shape[2];
        EnsureTables(t);
        using var scope = NewDisposeScope();
        var c = cos!.narrow(0, 0, t);
        var s = sin!.narrow(0, 0, t);
        Tensor rot = rotaryDim == headDim ? x : x.narrow(-1, 0, rotaryDim);
        var half = rotaryDim / 2;
        var x1 = rot.narrow(-1, 0, half);
        var x2 = rot.narrow(-1, half, half);
        var rotated = cat(new[] { -x2, x1 }, -1);
        var outRot = rot * c + rotated * s;
        var result = rotaryDim == headDim ? outRot : cat(new[] { outRot, x.narrow(-1, rotaryDim, headDim - rotaryDim) }, -1);
        return result.MoveToOuterDisposeScope();
    }

    private void EnsureTables(long length)
    {
        if (cos is not null && cachedLength >= length) return;
        cos?.Dispose();
        sin?.Dispose();
        using var scope = NewDisposeScope();
        var invFreq = pow(theta, -arange(0, rotaryDim, 2, dtype: ScalarType.Float64) / rotaryDim);
        var pos = arange(length, dtype: ScalarType.Float64);
        var freqs = outer(pos, invFreq);
        var emb = cat(new[] { freqs, freqs }, -1);
        cos = emb.cos().to(ScalarType.Float32).DetachFromDisposeScope();
        sin = emb.sin().to(ScalarType.Float32).DetachFromDisposeScope();
        cachedLength = length;
    }

    public void Dispose()
    {
        cos?.Dispose();
        sin?.Dispose();
    }
}
