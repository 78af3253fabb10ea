using Afinado.Planner.Architecture;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>Causal self-attention with grouped-query heads, RoPE and optional q/k RMSNorm (Hugging Face LlamaAttention).</summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly AdaptableLinear qProj, kProj, vProj, oProj;
    private readonly RmsNorm? qNorm, kNorm;
    private readonly Rotary rotary;
    private readonly long heads, kvHeads, headDim;
    private readonly double scale;

    public LlamaAttention(ModelArchitecture arch, Rotary rotary) : base(nameof(LlamaAttention))
    {
        heads = arch.NumHeads;
        kvHeads = arch.NumKvHeads;
        headDim = arch.HeadDim;
        scale = 1.0 / Math.Sqrt(headDim);
        this.rotary = rotary;
        qProj = new AdaptableLinear(arch.HiddenSize, arch.QueryWidth, arch.QkvBias);
        kProj = new AdaptableLinear(arch.HiddenSize, arch.KvWidth, arch.QkvBias);
        vProj = new AdaptableLinear(arch.HiddenSize, arch.KvWidth, arch.QkvBias);
        oProj = new AdaptableLinear(arch.QueryWidth, arch.HiddenSize, arch.AttentionOutBias);
        register_module("q_proj", qProj);
        register_module("k_proj", kProj);
        register_module("v_proj", vProj);
        register_module("o_proj", oProj);
        if (arch.QkNorm)
        {
            qNorm = new RmsNorm(headDim, arch.NormEpsilon);
            kNorm = new RmsNorm(headDim, arch.NormEpsilon);
            register_module("q_norm", qNorm);
            register_module("k_norm", kNorm);
        }
    }

    public AttentionKernel Kernel { get; set; } = AttentionKernel.Sdpa;

    public override Tensor forward(Tensor x) => Attend(x, null);

    /// <summary>
    /// The same attention for generation: the new tokens' keys and values (rotated at their positions, before the
    /// grouped-query repeat) are appended to <paramref name="cache"/> and the queries attend over all of them. A prompt
    /// (cache empty) is causal within itself; a decode step (one token) sees every cached position.
    /// </summary>
    public Tensor Step(Tensor x, LayerKvCache cache) => Attend(x, cache);

    private Tensor Attend(Tensor x, LayerKvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        long offset = cache?.Length ?? 0;
        if (cache is not null && offset > 0 && t != 1)
            throw new ArgumentException("after the prompt, a cached step takes one token at a time", nameof(x));
        var q = qProj.call(x).view(b, t, heads, headDim);
        var k = kProj.call(x).view(b, t, kvHeads, headDim);
        var v = vProj.call(x).view(b, t, kvHeads, headDim).transpose(1, 2);
        if (qNorm is not null) { q = qNorm.call(q); k = kNorm!.call(k); }
        q = rotary.Apply(q.transpose(1, 2), offset);
        k = rotary.Apply(k.transpose(1, 2), offset);
        if (cache is not null) (k, v) = cache.Append(k, v);
        bool causal = offset == 0 && t > 1;
        if (kvHeads != heads)
        {
            // Grouped-query attention: each key/value head serves heads/kvHeads query heads.
            long groups = heads / kvHeads;
            k = k.repeat_interleave(groups, dim: 1);
            v = v.repeat_interleave(groups, dim: 1);
        }
        Tensor y;
        if (Kernel == AttentionKernel.Sdpa)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: causal); // sic: TorchSharp's spelling
        }
        else
        {
            var scores = q.matmul(k.transpose(-2, -1)).mul_(scale);
            if (causal)
            {
                using var mask = ones(t, t, dtype: ScalarType.Bool, device: x.device).triu(1);
                scores = scores.masked_fill(mask, float.NegativeInfinity);
            }
            y = scores.softmax(-1).matmul(v);
        }
        y = y.transpose(1, 2).contiguous().view(b, t, heads * headDim);
        return oProj.call(y).MoveToOuterDisposeScope();
    }
}
