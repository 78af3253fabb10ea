using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// PhiMoE's sparse block (transformers models/phimoe: PhimoeSparseMoeBlock, <c>sparsemixer</c>, MultiplierProcessor) op by
/// op, as bench/interop/moe_saved.py --phimoe runs it on autograd: in training the block input is multiplied in place by
/// uniform noise (input_jitter_noise), the router linear gives the scores, and sparsemixer picks two experts, each by
/// masking the scores far below the best (no_grad), Gumbel-sampling an expert, a softmax, the gathered weight and, in
/// training, MultiplierProcessor with the midpoint mask; the second pick starts from the scores with the first expert
/// scattered to −inf. The two weights and indices are concatenated and the stacked experts run as Mixtral's
/// (grouped_mm or the eager loop), weighted in the softmax's dtype.
/// </summary>
internal sealed partial class DecoderTrace
{
    private int PhimoeBlock(MoeParams moe, int x, int xb)
    {
        bool training = _job.IsTraining;
        if (training && _a.MoeInputJitter > 0)
        {
            // hidden_states *= torch.empty_like(hidden_states).uniform_(…): in place; MulBackward keeps the noise.
            int noise = _t.New(xb * T * _a.HiddenSize);
            _t.ScaleInPlace(x, noise);
            _t.Drop(noise);
        }
        int scores = Linear(x, xb, moe.Router, out int lb);
        // softmax is on autocast's fp32 list; otherwise it stays in the scores' dtype.
        int gb = _amp ? 4 : lb;
        var (routing, selected) = Sparsemixer(scores, lb, gb, training);
        int output = _job.ResolvedExperts == ExpertsBackend.GroupedMm
            ? GroupedMmExperts(x, xb, routing, moe, weightBytes: gb)
            : EagerExperts(x, xb, routing, moe, weightBytes: gb);
        // The block returns the router logits beside its output; the decoder layer discards them.
        _t.Drop(routing, selected, scores);
        return output;
    }

    /// <summary>sparsemixer(scores, jitter_eps, training): the concatenated weights [T, 2] and expert indices [T, 2] (int64).
    /// Its other locals die as it returns; what autograd keeps stays with the nodes (each pick's masked_fill mask, its
    /// softmax and the gathered weight, the chosen index; the second pick's scatter keeps the first index).</summary>
    private (int Routing, int Selected) Sparsemixer(int scores, int lb, int gb, bool training)
    {
        long tokens = T, experts = _a.NumExperts;
        var locals = new List<int>();
        var (multiplier, chosen) = SparsemixerPick(scores, scores, lb, gb, training, locals);
        // masked_scores = torch.scatter(scores, -1, selected_experts, -inf): a new tensor; its backward reads the index.
        int maskedScores = _t.New(lb * tokens * experts);
        _t.Op(maskedScores, [scores], saved: [chosen]);
        locals.Add(maskedScores);
        var (multiplier2, chosen2) = SparsemixerPick(scores, maskedScores, lb, gb, training, locals);
        int routing = _t.New(gb * tokens * 2);
        _t.Op(routing, [multiplier, multiplier2]);
        int selected = _t.New(8 * tokens * 2);
        _t.Drop(multiplier, chosen, multiplier2, chosen2);
        foreach (int t in locals) _t.Drop(t);
        return (routing, selected);
    }

    /// <summary>One pick of sparsemixer from <paramref name="source"/> (the scores, or the scores with the first pick masked
    /// out). Returns the multiplier [T, 1] and the chosen expert [T, 1]; tensors bound to locals that outlive the pick go
    /// to <paramref name="locals"/>.</summary>
    private (int Multiplier, int Chosen) SparsemixerPick(int scores, int source, int lb, int gb, bool training, List<int> locals)
    {
        long tokens = T, experts = _a.NumExperts, wide = tokens * experts;
        // no_grad: threshold, max_ind = source.max(-1, keepdim); factor = scores.abs().clamp(min=threshold);
        // mask = ((threshold − scores) / factor) > 2·eps.
        int threshold = _t.New(lb * tokens), maxInd = _t.New(8 * tokens);
        int abs = _t.New(lb * wide);
        int factor = _t.New(lb * wide);
        _t.Drop(abs);
        int difference = _t.New(lb * wide);
        int ratio = _t.New(lb * wide);
        _t.Drop(difference);
        int mask = _t.New(wide);
        _t.Drop(ratio, threshold);
        locals.Add(factor);
        // masked_gates = source.masked_fill(mask, -inf): the fill keeps its bool mask.
        int masked = _t.New(lb * wide);
        _t.Op(masked, [source], saved: [mask]);
        _t.Drop(mask);
        int chosen;
        if (training)
        {
            // (masked_gates − empty_like(…).exponential_().log()).max(-1)[1]: Gumbel sampling; nothing differentiates it.
            int noise = _t.New(lb * wide);
            int log = _t.New(lb * wide);
            _t.Drop(noise);
            int perturbed = _t.New(lb * wide);
            _t.Drop(log);
            int values = _t.New(lb * tokens);
            chosen = _t.New(8 * tokens);
            _t.Drop(values, perturbed);
        }
        else chosen = _t.Hold(maxInd);
        int gates = Softmax(masked, gb * wide);
        _t.Drop(masked);
        int gathered = _t.New(gb * tokens);
        _t.Op(gathered, [gates], saved: [chosen]);
        locals.Add(gates);
        if (!training)
        {
            locals.Add(maxInd);
            return (gathered, chosen);
        }
        // max_scores, max_ind = gates.max(-1, keepdim); mask_for_one = (chosen == max_ind) | (rand_like(max_scores) > 0.75),
        // then 0.3333 + 0.6667 · mask in the default dtype, cast to the gates' dtype.
        int maxScores = _t.New(gb * tokens), maxInd2 = _t.New(8 * tokens);
        _t.Drop(maxInd);
        int equal = _t.New(tokens);
        int random = _t.New(gb * tokens);
        int above = _t.New(tokens);
        _t.Drop(random);
        int either = _t.New(tokens);
        _t.Drop(equal, above);
        int midpoint = _t.New(4L * tokens);
        _t.Drop(either);
        if (gb != 4)
        {
            int cast = _t.New(gb * tokens);
            _t.Drop(midpoint);
            midpoint = cast;
        }
        // MultiplierProcessor: multiplier_o · mask_for_one; keeps multiplier_o, the chosen index and the gates; its backward
        // returns a gradient for the scores only ([T, E]: gates · −grad, scattered), through two [T, 1] temporaries.
        int multiplier = _t.New(gb * tokens);
        _t.Op(multiplier, [scores], saved: [gathered, chosen, gates], backwardTemporaries: [gb * tokens, gb * tokens]);
        _t.Drop(gathered);
        locals.AddRange([maxScores, maxInd2, midpoint]);
        return (multiplier, chosen);
    }
}
