using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// DeepSeek-V2/V3 as transformers 5 runs them, op by op (the ops bench/interop/mla_saved.py and moe_saved.py --deepseek /
/// --deepseek2 run on autograd to check the ledger): multi-head latent attention (DeepseekV3Attention) and the sparse
/// block (DeepseekV3MoE / DeepseekV2Moe: the router on fp32 copies, V3's sigmoid with bias-corrected grouped top-k and
/// renormalisation or V2's softmax with greedy or group-limited top-k, the stacked experts through grouped_mm or the eager
/// loop in the router's dtype, the shared experts added).
/// </summary>
internal sealed partial class DecoderTrace
{
    /// <summary>
    /// DeepseekV3Attention.forward: the query through q_a_proj → q_a_layernorm → q_b_proj (or q_proj); kv_a_proj_with_mqa's
    /// output split into the latent (→ kv_a_layernorm → kv_b_proj, split into k_nope and the values) and the shared rotary
    /// key; rotary on both rotary parts; query and key concatenated; attention; o_proj. The module's locals (the
    /// projections' outputs, which the split views keep, the rotated parts, query, key) live until it returns; the values
    /// are a view of kv_b_proj's output. flash_attention_2 pads the values to the query's head width and o_proj reads a
    /// contiguous copy of its sliced output.
    /// </summary>
    private int MlaAttention(LayerParams L, LatentAttention mla, int y, int yb, int layer, int[]? cache, long cachedTokens, out int weights)
    {
        weights = -1;
        long heads = _a.NumHeads, qk = mla.QkHeadDim, s = _seq, b = _batch;
        long queryWidth = heads * qk, valueWidth = heads * mla.ValueHeadDim;
        int ob = _amp ? 2 : _c;
        int q;
        if (L.QLatentNorm is { } qNorm)
        {
            int qa = Linear(y, yb, L.AttnIn[0], out int qab);
            var (latent, _) = Norm(qa, qab, qNorm, mla.QueryRank!.Value);
            _t.Drop(qa);
            q = Linear(latent, qab, L.AttnIn[1]);
            _t.Drop(latent);
        }
        else q = Linear(y, yb, L.AttnIn[0]);
        int compressed = Linear(y, yb, L.AttnIn[^2], out int cb);
        // kv_a_layernorm reads k_pass, a split view of the compressed output (its fp32 upcast copies it unless it is fp32).
        var (kvLatent, _) = Norm(compressed, cb, L.KvLatentNorm!, mla.KvRank);
        int kv = Linear(kvLatent, cb, L.AttnIn[^1]);
        _t.Drop(kvLatent);
        // Rotary on views of q and of the compressed output (both stay alive through their other views); under AMP the
        // fp32 cos/sin promote the products to fp32.
        int rb = _amp && cache is null ? _r : ob;
        int qRot = Rotary(q, heads * mla.RopeHeadDim, ob, rb, layer);
        int kRot = Rotary(compressed, mla.RopeHeadDim, ob, rb, layer);
        int catBytes = Math.Max(ob, rb);
        int query = _t.New(catBytes * T * queryWidth);
        _t.Op(query, [q, qRot]);
        // k_rot.expand(...) is a view: the concatenation reads it for every head.
        int key = _t.New(catBytes * T * queryWidth);
        _t.Op(key, [kv, kRot]);
        _t.Drop(qRot, kRot);
        if (catBytes != ob)
        {
            query = Cast(query, queryWidth, ob);
            key = Cast(key, queryWidth, ob);
        }
        int value = _t.Hold(kv);
        // After kbit prep, the kernel's 16-bit casts (the values' a copy of the view alone).
        (query, key, value, ob) = KbitAttentionInputs(query, key, value, queryWidth, queryWidth, valueWidth, ob);
        long keys = s;
        if (cache is not null)
        {
            int kc = AppendToCache(cache, 2 * layer, key, queryWidth, cachedTokens, out keys);
            int vc = AppendToCache(cache, 2 * layer + 1, value, valueWidth, cachedTokens, out _);
            _t.Drop(key, value);
            (key, value) = (kc, vc);
        }
        int output;
        if (_job.Attention == AttentionKernel.Eager)
        {
            int probabilities = EagerProbabilities(query, key, ob, s, keys);
            // p·v: the batched matmul keeps the values' view when one sequence lets it fold the batch into the heads, a
            // contiguous copy of them otherwise.
            int v = value;
            if (b > 1 && cache is null) { v = _t.New(ob * T * valueWidth); _t.Op(v, [value]); }
            else _t.Hold(value);
            int o = _t.New(ob * T * valueWidth);
            _t.Op(o, [probabilities, v], saved: [probabilities, v]);
            _t.Drop(v);
            weights = probabilities;
            output = _t.New(ob * T * valueWidth);
            _t.Op(output, [o]);
            _t.Drop(o);
        }
        else if (_job.Attention == AttentionKernel.Flash && cache is null)
        {
            // F.pad(value_states, [0, qk_head_dim − v_head_dim]): flash-attn needs one head width.
            int padded = _t.New(ob * T * queryWidth);
            _t.Op(padded, [value]);
            int padOut = _t.New(ob * T * queryWidth);
            int lse = _t.New(4 * b * heads * s);
            _t.Op(padOut, [query, key, padded], saved: [query, key, padded, padOut, lse], backwardTemporaries: [4 * T * queryWidth, 4 * b * heads * s]);
            _t.Drop(lse, padded);
            output = _t.New(ob * T * valueWidth);
            _t.Op(output, [padOut]);
            _t.Drop(padOut);
        }
        else
        {
            // SDPA's memory-efficient kernel (flash needs equal head widths): output and fp32 log-sum-exp, both kept with
            // query, key and the values' view.
            output = _t.New(ob * T * valueWidth);
            int lse = _t.New(4 * b * heads * s);
            _t.Op(output, [query, key, value], saved: [query, key, value, output, lse], backwardTemporaries: [4 * T * queryWidth, 4 * b * heads * s]);
            _t.Drop(lse);
        }
        int attn = L.AttnOut is { } oProj ? Linear(output, ob, oProj) : _t.Hold(output);
        _t.Drop(output);
        _t.Drop(q, compressed, kv, query, key, value);
        return attn;
    }

    /// <summary>
    /// DeepseekV3MoE / DeepseekV2Moe.forward: the router (F.linear on fp32 copies of the input and of the weight, then V3's
    /// sigmoid, the no_grad choice among bias-corrected scores in the best groups, the gathered weights renormalised in place
    /// and scaled; or V2's fp32 softmax, greedy or group-limited top-k, scaled), the stacked experts in the router's dtype
    /// (the weighted output cast back for index_add_ or the sum), and the shared experts on every token, added.
    /// </summary>
    private int DeepseekBlock(LayerParams layer, MoeParams moe, int x, int xb)
    {
        long tokens = T, experts = _a.NumExperts, k = _a.ExpertsPerToken;
        int logits = DeepseekRouterLinear(x, xb, moe.Router, out int rb);
        int scores, topW, topI;
        if (_a.MoeSigmoidScores)
        {
            scores = _t.New(rb * tokens * experts);
            _t.Op(scores, [logits], saved: [scores]);
            _t.Drop(logits);
            // no_grad: scores + e_score_correction_bias (fp32), the best groups, the mask, top-k of the masked choice.
            int choice = _t.New(4 * tokens * experts);
            topI = GroupChoice(choice, 4, keepMask: false);
            _t.Drop(choice);
            topW = _t.New(rb * tokens * k);
            _t.Op(topW, [scores], saved: [topI]);
            if (_a.MoeRenormalizesTopK)
            {
                // topk_weights /= topk_weights.sum(-1, keepdim=True) + 1e-20, in place: autograd keeps the weights from
                // before the division and the fp32 denominator (sum is on autocast's fp32 list).
                int sum = _t.New(4 * tokens);
                _t.Op(sum, [topW]);
                int denominator = _t.New(4 * tokens);
                _t.Op(denominator, [sum]);
                _t.Drop(sum);
                if (_t.Recording && _t.RequiresGrad(topW))
                {
                    int divided = _t.New(rb * tokens * k);
                    _t.Op(divided, [topW, denominator], saved: [topW, denominator]);
                    _t.Drop(topW);
                    topW = divided;
                }
                _t.Drop(denominator);
            }
        }
        else
        {
            // .softmax(dim=-1, dtype=torch.float32)
            scores = Softmax(logits, 4L * tokens * experts);
            _t.Drop(logits);
            rb = 4;
            if (_a.MoeGroupLimitedMask)
            {
                // group_limited_greedy: the scores masked to the best groups; masked_fill keeps its bool mask.
                int mask = GroupChoice(scores, 4, keepMask: true);
                int masked = _t.New(4L * tokens * experts);
                _t.Op(masked, [scores], saved: [mask]);
                _t.Drop(mask, scores);
                scores = masked;
            }
            topW = _t.New(4 * tokens * k);
            topI = _t.New(8 * tokens * k);
            _t.Op(topW, [scores], saved: [topI]);
        }
        // topk_weights * routed_scaling_factor: a new tensor.
        int scaled = _t.New(rb * tokens * k);
        _t.Op(scaled, [topW]);
        _t.Drop(topW);
        topW = scaled;
        int routed = _job.ResolvedExperts == ExpertsBackend.GroupedMm
            ? GroupedMmExperts(x, xb, topW, moe, weightBytes: rb)
            : EagerExperts(x, xb, topW, moe, weightBytes: rb);
        _t.Drop(topW, topI, scores);
        if (layer.MlpDown is null) return routed;
        // hidden_states + self.shared_experts(residuals)
        int shared = Mlp(layer, x, xb);
        int output = _t.New(xb * tokens * _a.HiddenSize);
        _t.Op(output, [routed, shared]);
        _t.Drop(routed, shared);
        return output;
    }

    /// <summary>The router's <c>F.linear(hidden_states.type(torch.float32), self.weight.type(torch.float32))</c>: in pure
    /// 16 bits both are copied to fp32 (the linear keeps the input's copy when the router trains and the weight's when the
    /// input needs a gradient); fp32 (or kbit-prepared) inputs and weights are used as they are, and under AMP autocast
    /// runs the linear in 16 bits as any other. Returns the logits and their bytes per element.</summary>
    private int DeepseekRouterLinear(int x, int xb, LinearParams router, out int logitBytes)
    {
        var weight = router.Weight;
        if (_amp || (xb == 4 && weight.StorageBytes >= 4 * weight.Elements)) return Linear(x, xb, router, out logitBytes);
        long tokens = T, h = _a.HiddenSize, experts = _a.NumExperts;
        int input32 = x;
        if (xb < 4) { input32 = _t.New(4 * tokens * h); _t.Op(input32, [x]); }
        else _t.Hold(x);
        int weight32 = -1;
        if (weight.StorageBytes < 4 * weight.Elements) { weight32 = _t.New(4 * weight.Elements); _t.Op(weight32, [], weights: [new WeightGrad(weight, 4)]); }
        int logits = _t.New(4 * tokens * experts);
        if (_t.Recording)
        {
            bool inputGrad = _t.RequiresGrad(input32), weightGrad = weight32 >= 0 ? _t.RequiresGrad(weight32) : weight.Trainable;
            int[] saved = (weightGrad, inputGrad && weight32 >= 0) switch
            {
                (true, true) => [input32, weight32],
                (true, false) => [input32],
                (false, true) => [weight32],
                _ => [],
            };
            _t.Op(logits, weight32 >= 0 ? [input32, weight32] : [input32], saved: saved,
                weights: weight32 >= 0 ? default : [new WeightGrad(weight, 4)]);
        }
        _t.Drop(input32);
        if (weight32 >= 0) _t.Drop(weight32);
        logitBytes = 4;
        return logits;
    }

    /// <summary>
    /// The no_grad group choice of DeepSeek's routers over <paramref name="scores"/> ([T, E], <paramref name="bytes"/> per
    /// element): per group the best two scores summed (V3) or the best one (V2), the best topk_group groups, a zeroed group
    /// mask scattered with ones, expanded to the experts (a reshape copy) and inverted as bool. V3 then fills the other
    /// experts' scores with 0 and takes the top-k indices, returned; V2 returns the inverted mask for its masked_fill.
    /// </summary>
    private int GroupChoice(int scores, int bytes, bool keepMask)
    {
        long tokens = T, experts = _a.NumExperts, groups = _a.MoeRouterGroups, top = _a.MoeRouterTopGroups, k = _a.ExpertsPerToken;
        int picks = keepMask ? 1 : 2;
        int bestValues = _t.New(bytes * tokens * groups * picks), bestIndices = _t.New(8 * tokens * groups * picks);
        _t.Drop(bestIndices);
        int groupScores = bestValues;
        if (picks > 1) { groupScores = _t.New(bytes * tokens * groups); _t.Drop(bestValues); }
        int groupValues = _t.New(bytes * tokens * top), groupIndex = _t.New(8 * tokens * top);
        _t.Drop(groupValues);
        int groupMask = _t.New(bytes * tokens * groups);
        _t.Drop(groupScores, groupIndex);
        int scoreMask = _t.New(bytes * tokens * experts);
        _t.Drop(groupMask);
        int asBool = _t.New(tokens * experts);
        _t.Drop(scoreMask);
        int inverted = _t.New(tokens * experts);
        _t.Drop(asBool);
        if (keepMask) return inverted;
        int filled = _t.New(bytes * tokens * experts);
        _t.Drop(inverted);
        int values = _t.New(bytes * tokens * k), indices = _t.New(8 * tokens * k);
        _t.Drop(values, filled);
        return indices;
    }
}
