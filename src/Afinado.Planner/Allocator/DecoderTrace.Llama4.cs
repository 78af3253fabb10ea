using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// Llama 4's text decoder as transformers runs it (models/llama4: Llama4TextAttention, Llama4TextMoe), op by op: on RoPE
/// layers the rotary embedding as a complex fp32 product (<c>apply_rotary_emb</c>) and the weightless q/k L2 norm, on NoPE
/// layers the query's temperature scaling; the sparse block routes every token to every expert (Llama4Router's top-k
/// logits scattered into −∞, an fp32 sigmoid), repeats the hidden state per expert scaled by its score, runs the two
/// <c>torch.bmm</c> over the stacked experts and adds their sum to the shared expert's output in place.
/// </summary>
internal sealed partial class DecoderTrace
{
    /// <summary>Llama4TextAttention between the projections and the kernel; q and k come back in their projections' dtype
    /// (<paramref name="ob"/>).</summary>
    private (int Q, int K) Llama4Positions(int q, int k, int layer, int ob)
    {
        long qW = _a.QueryWidth, kvW = _a.KvWidth;
        if (_a.UsesRope(layer))
        {
            q = ComplexRotary(q, qW, ob);
            k = ComplexRotary(k, kvW, ob);
            if (_a.QkNorm)
            {
                q = L2Norm(q, ob, qW);
                k = L2Norm(k, ob, kvW);
            }
        }
        else if (_a.AttentionTemperatureTuning)
        {
            // (query_states * attn_scales).to(query_states.dtype): the fp32 per-position scales promote the product.
            int scaled = _t.New(4 * T * qW);
            _t.Op(scaled, [q]);
            _t.Drop(q);
            q = ob == 4 ? scaled : Cast(scaled, qW, ob);
        }
        return (q, k);
    }

    /// <summary>apply_rotary_emb: <c>x.float()</c> (a copy unless fp32) viewed as complex, times freqs_cis (the product keeps
    /// only the shared table), viewed as real and <c>type_as(x)</c>.</summary>
    private int ComplexRotary(int x, long width, int xb)
    {
        int x32 = x;
        if (xb < 4) { x32 = _t.New(4 * T * width); _t.Op(x32, [x]); }
        else _t.Hold(x);
        int product = _t.New(4 * T * width);
        _t.Op(product, [x32]);
        _t.Drop(x32, x);
        return xb == 4 ? product : Cast(product, width, xb);
    }

    /// <summary>Llama4TextL2Norm per head: <c>x.float()</c>, x² and its mean, rsqrt (kept), the product (keeping the fp32 x and
    /// the rsqrt), <c>type_as(x)</c>; no weight.</summary>
    private int L2Norm(int x, int xb, long width)
    {
        int normed = Normalized32(x, xb, width, T * Math.Max(1, width / _a.HeadDim));
        _t.Drop(x);
        return xb == 4 ? normed : Cast(normed, width, xb);
    }

    /// <summary>
    /// Llama4TextMoe.forward: the router (an nn.Linear) and its top-k logits scattered into a −∞ tensor, an fp32 sigmoid
    /// cast back; the hidden state repeated for every expert times the transposed score column; Llama4TextExperts' bmm
    /// with gate_up [E, h, 2I], SwiGLU, bmm with down [E, I, h]; the shared expert; <c>out.add_(routed.sum(0))</c>.
    /// </summary>
    private int Llama4Block(LayerParams layer, MoeParams moe, int x, int xb)
    {
        long tokens = T, h = _a.HiddenSize, experts = _a.NumExperts, width = _a.ExpertWidth, k = _a.ExpertsPerToken;
        int logits = Linear(x, xb, moe.Router, out int lb);
        int topValues = _t.New(lb * tokens * k), topIndices = _t.New(8 * tokens * k);
        _t.Op(topValues, [logits], saved: [topIndices]);
        // torch.full_like(router_logits, -inf).scatter_(1, indices, values): the filled tensor takes the values in place.
        int scattered = _t.New(lb * tokens * experts);
        _t.Op(scattered, [topValues], saved: [topIndices]);
        _t.Drop(topValues);
        int scores32 = scattered;
        if (lb < 4) { scores32 = _t.New(4 * tokens * experts); _t.Op(scores32, [scattered]); }
        else _t.Hold(scattered);
        int sigmoid = _t.New(4 * tokens * experts);
        _t.Op(sigmoid, [scores32], saved: [sigmoid]);
        _t.Drop(scores32, scattered);
        int scores = lb == 4 ? sigmoid : Cast(sigmoid, experts, lb);
        // hidden_states.repeat(E, 1) * router_scores.transpose(0, 1).reshape(-1, 1) (the reshape copies the column).
        int repeated = _t.New(xb * experts * tokens * h);
        _t.Op(repeated, [x]);
        int column = _t.New(lb * experts * tokens);
        _t.Op(column, [scores]);
        int pb = Math.Max(xb, lb);
        int routedIn = _t.New(pb * experts * tokens * h);
        if (_t.Recording)
        {
            bool columnGrad = _t.RequiresGrad(column), repeatedGrad = _t.RequiresGrad(repeated);
            int[] saved = (columnGrad, repeatedGrad) switch
            {
                (true, true) => [repeated, column],
                (true, false) => [repeated],
                (false, true) => [column],
                _ => [],
            };
            _t.Op(routedIn, [repeated, column], saved: saved);
        }
        _t.Drop(repeated, column);
        // torch.bmm under autocast runs in 16 bits: a copy of the scaled state (and of fp32 stacks).
        int ce = _amp ? 2 : (int)(moe.GateUp.StorageBytes / Math.Max(1, moe.GateUp.Elements));
        int input = routedIn;
        if (pb != ce) { input = _t.New(ce * experts * tokens * h); _t.Op(input, [routedIn]); }
        else _t.Hold(routedIn);
        int gateUpWeight = StackWeight(moe.GateUp, moe.GateUpLora, ce, out bool gateUpMerged);
        int gateUp = _t.New(ce * experts * tokens * 2 * width);
        StackMatmul(gateUp, input, moe.GateUp, gateUpWeight, ce);
        int product = SwiGlu(gateUp, ce * experts * tokens * width);
        int downWeight = StackWeight(moe.Down, moe.DownLora, ce, out bool downMerged);
        int down = _t.New(ce * experts * tokens * h);
        StackMatmul(down, product, moe.Down, downWeight, ce);
        _t.Drop(input, gateUp, product);
        if (gateUpMerged) _t.Drop(gateUpWeight);
        if (downMerged) _t.Drop(downWeight);
        int output = Mlp(layer, x, xb);
        int summed = _t.New(ce * tokens * h);
        _t.Op(summed, [down]);
        _t.Drop(down);
        _t.AddInPlace(output, summed);
        _t.Drop(summed, routedIn, scores, topIndices, logits);
        return output;
    }

    /// <summary>torch.bmm of the per-expert rows with a stack: the input's gradient reads the stack (or autocast's 16-bit copy
    /// of an fp32 one, or the merged W + ΔW of PEFT's ParamWrapper), the stack's reads the input.</summary>
    private void StackMatmul(int output, int input, Param stack, int merged, int ce)
    {
        if (!_t.Recording) return;
        bool inputGrad = _t.RequiresGrad(input);
        if (merged >= 0)
        {
            _t.Op(output, [input, merged], saved: inputGrad ? [input, merged] : [input]);
            return;
        }
        int cast = -1;
        if (_amp && stack.StorageBytes != 2 * stack.Elements && inputGrad) cast = _t.New(2 * stack.Elements);
        _t.Op(output, [input], saved: stack.Trainable ? (cast >= 0 ? [input, cast] : [input]) : cast >= 0 ? [cast] : [],
            weights: [new WeightGrad(stack, ce)]);
        if (cast >= 0) _t.Drop(cast);
    }
}
