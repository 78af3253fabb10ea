using Afinado.Planner.Architecture;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

namespace Afinado.Training.Models;

/// <summary>
/// Causal self-attention with grouped-query heads, RoPE and optional q/k RMSNorm (Hugging Face LlamaAttention), plus what
/// Gemma 2 and 3 add: the scale 1/√query_pre_attn_scalar, soft-capped scores (c · tanh(x / c), Gemma 2) and layers that
/// attend only within the sliding window (transformers masking_utils sliding_window_overlay: key j is seen from query i
/// when j ≤ i and i − j &lt; window).
/// </summary>
public sealed class LlamaAttention : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    // Phi-3 fuses q, k and v into one qkv_proj (Phi3Attention), split by width after the projection.
    private readonly AdaptableLinear? qProj, kProj, vProj, qkvProj;
    private readonly AdaptableLinear oProj;
    private readonly long queryWidth, kvWidth;
    private readonly RmsNorm? qNorm, kNorm;
    private readonly Rotary rotary;
    private readonly long heads, kvHeads, headDim;
    private readonly double scale;
    private readonly double? softcap;
    private readonly long? window;

    public LlamaAttention(ModelArchitecture arch, Rotary rotary, int layer = 0) : base(nameof(LlamaAttention))
    {
        heads = arch.NumHeads;
        kvHeads = arch.NumKvHeads;
        headDim = arch.HeadDim;
        scale = 1.0 / Math.Sqrt(arch.QueryPreAttnScalar ?? headDim);
        softcap = arch.AttnLogitSoftcap;
        window = arch.IsSlidingLayer(layer) ? arch.SlidingWindow : null;
        this.rotary = rotary;
        queryWidth = arch.QueryWidth;
        kvWidth = arch.KvWidth;
        if (arch.Tensors.Any(t => t.Role == TensorRole.AttnQkv && t.Layer == layer))
        {
            qkvProj = new AdaptableLinear(arch.HiddenSize, arch.QueryWidth + 2 * arch.KvWidth, arch.QkvBias);
            register_module("qkv_proj", qkvProj);
        }
        else
        {
            qProj = new AdaptableLinear(arch.HiddenSize, arch.QueryWidth, arch.QkvBias);
            kProj = new AdaptableLinear(arch.HiddenSize, arch.KvWidth, arch.QkvBias);
            vProj = new AdaptableLinear(arch.HiddenSize, arch.KvWidth, arch.QkvBias);
            register_module("q_proj", qProj);
            register_module("k_proj", kProj);
            register_module("v_proj", vProj);
        }
        oProj = new AdaptableLinear(arch.QueryWidth, arch.HiddenSize, arch.AttentionOutBias);
        register_module("o_proj", oProj);
        if (arch.QkNorm)
        {
            qNorm = new RmsNorm(headDim, arch.NormEpsilon, arch.NormWeightOffset);
            kNorm = new RmsNorm(headDim, arch.NormEpsilon, arch.NormWeightOffset);
            register_module("q_norm", qNorm);
            register_module("k_norm", kNorm);
        }
    }

    /// <summary>How scores are computed (the planner's <see cref="AttentionKernel"/>): libtorch's fused
    /// <c>scaled_dot_product_attention</c> (CPU flash kernel: no [T,T] score matrix kept) or explicit QKᵀ, mask,
    /// softmax, ·V (materialises the [B,H,T,T] scores and probabilities). Both give the same result. transformers'
    /// flash_attention_2 is a CUDA kernel this CPU model does not have.</summary>
    public AttentionKernel Kernel
    {
        get => kernel;
        set => kernel = value == AttentionKernel.Flash
            ? throw new ArgumentOutOfRangeException(nameof(value), value, "flash_attention_2 is a CUDA kernel; the CPU model runs sdpa or eager")
            : value;
    }

    private AttentionKernel kernel = AttentionKernel.Sdpa;

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
        Tensor q, k, v;
        if (qkvProj is not null)
        {
            var qkv = qkvProj.call(x);
            q = qkv.narrow(-1, 0, queryWidth).view(b, t, heads, headDim);
            k = qkv.narrow(-1, queryWidth, kvWidth).view(b, t, kvHeads, headDim);
            v = qkv.narrow(-1, queryWidth + kvWidth, kvWidth).view(b, t, kvHeads, headDim).transpose(1, 2);
        }
        else
        {
            q = qProj!.call(x).view(b, t, heads, headDim);
            k = kProj!.call(x).view(b, t, kvHeads, headDim);
            v = vProj!.call(x).view(b, t, kvHeads, headDim).transpose(1, 2);
        }
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
        long keys = k.shape[2];
        // Positions a query may not see: later ones, and with a window those window or more behind it. Null: none hidden
        // beyond the plain causal mask.
        using var hidden = window is { } w && keys > w ? HiddenPositions(t, keys, offset, w, x.device) : null;
        Tensor y;
        // SDPA scales by 1/√head_dim and cannot soft-cap: another scale or a cap takes the explicit path.
        if (Kernel == AttentionKernel.Sdpa && softcap is null && Math.Abs(scale * Math.Sqrt(headDim) - 1) < 1e-12)
        {
            y = hidden is null
                ? nn.functional.scaled_dot_product_attention(q, k, v, is_casual: causal) // sic: TorchSharp's spelling
                : nn.functional.scaled_dot_product_attention(q, k, v, zeros(hidden.shape, dtype: q.dtype, device: q.device).masked_fill_(hidden, float.NegativeInfinity));
        }
        else
        {
            var scores = q.matmul(k.transpose(-2, -1)).mul_(scale);
            // Soft-cap: tanh keeps its output for backward, so the product with the cap is a new tensor (in place, it
            // would modify what autograd saved and backward would refuse).
            if (softcap is { } cap) scores = scores.div_(cap).tanh().mul(cap);
            if (hidden is not null)
                scores = scores.masked_fill(hidden, float.NegativeInfinity);
            else if (causal)
            {
                using var mask = ones(t, t, dtype: ScalarType.Bool, device: x.device).triu(1);
                scores = scores.masked_fill(mask, float.NegativeInfinity);
            }
            y = scores.softmax(-1).matmul(v);
        }
        y = y.transpose(1, 2).contiguous().view(b, t, heads * headDim);
        return oProj.call(y).MoveToOuterDisposeScope();
    }

    /// <summary>[t, keys] true where query i (at position offset + i) must not see key j: j later than it, or j at least
    /// <paramref name="window"/> positions behind it.</summary>
    private static Tensor HiddenPositions(long t, long keys, long offset, long window, Device device)
    {
        using var scope = NewDisposeScope();
        var query = arange(offset, offset + t, dtype: ScalarType.Int64, device: device).unsqueeze(1);
        var key = arange(keys, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        return key.gt(query).logical_or_(query.sub(key).ge(window)).MoveToOuterDisposeScope();
    }
}
