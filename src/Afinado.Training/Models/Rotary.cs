using Afinado.Planner;
using Afinado.Planner.Architecture;
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
    private readonly RopeScaling? scaling;
    private Tensor? cos, sin;
    private long cachedLength;

    /// <param name="scaling">The config's rope_scaling: <c>llama3</c> and <c>linear</c> are applied to the frequencies
    /// (<see cref="Supports"/>); any other type is refused before a model is built.</param>
    public Rotary(long headDim, double theta, double partialFactor, RopeScaling? scaling = null)
    {
        if (!Supports(scaling))
            throw new InputError("config.json: rope_scaling", $"type \"{scaling!.Type}\" is not implemented by the trainer", "Train a model without rope_scaling or with the llama3 or linear type.");
        this.headDim = headDim;
        this.theta = theta;
        this.scaling = scaling;
        rotaryDim = Math.Max(2, (long)(headDim * partialFactor) / 2 * 2);
    }

    /// <summary>Whether the trainer reproduces this rope_scaling (none, <c>llama3</c>, <c>linear</c>).</summary>
    public static bool Supports(RopeScaling? scaling) => scaling is null || scaling.Type is "llama3" or "linear" or "default";

    /// <summary>
    /// inv_freq = θ^(−2i/d), rescaled as transformers' modeling_rope_utils does: <c>linear</c> divides every frequency by
    /// the factor; <c>llama3</c> (_compute_llama3_parameters) keeps wavelengths under original_max_position_embeddings /
    /// high_freq_factor, divides those over original / low_freq_factor by the factor, and blends the band between.
    /// </summary>
    internal static double[] InverseFrequencies(long rotaryDim, double theta, RopeScaling? scaling)
    {
        var inv = new double[rotaryDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = Math.Pow(theta, -2.0 * i / rotaryDim);
        if (scaling is null || scaling.Type == "default") return inv;
        double factor = scaling.Factor;
        if (scaling.Type == "linear")
        {
            for (int i = 0; i < inv.Length; i++) inv[i] /= factor;
            return inv;
        }
        double low = scaling.LowFreqFactor ?? 1, high = scaling.HighFreqFactor ?? 4, old = scaling.OriginalMaxPositionEmbeddings ?? 8192;
        double lowWavelen = old / low, highWavelen = old / high;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen < highWavelen) continue;
            if (wavelen > lowWavelen) { inv[i] /= factor; continue; }
            double smooth = (old / wavelen - low) / (high - low);
            inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
        }
        return inv;
    }

    /// <summary>Applies the rotation to q or k shaped [B, H, T, D] at positions <paramref name="offset"/> … offset+T−1
    /// (offset &gt; 0: new tokens after a KV cache of that length).</summary>
    public Tensor Apply(Tensor x, long offset = 0)
    {
        long t = x.shape[2];
        EnsureTables(offset + t);
        using var scope = NewDisposeScope();
        var c = cos!.narrow(0, offset, t);
        var s = sin!.narrow(0, offset, t);
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
        var invFreq = tensor(InverseFrequencies(rotaryDim, theta, scaling), ScalarType.Float64);
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
