using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Allocator;

/// <summary>
/// The sparse blocks of Mixtral, Qwen2/3 MoE and gpt-oss as transformers 5 runs them, op by op (the same ops
/// bench/interop/moe_saved.py runs on autograd to check the ledger's saved tensors): the router (Mixtral/Qwen's TopKRouter:
/// a linear, an fp32 softmax, top-k, renormalised in place; GptOssTopKRouter: a biased linear, top-k of the logits, a
/// softmax over the k), then the experts — grouped_mm_experts_forward (every token–expert pair gathered, sorted by expert,
/// two grouped matmuls over the stacked weights, gpt-oss's biases and gate, the routing weight, the order restored and the
/// k outputs of each token summed) or the eager loop expert by expert — with PEFT's ParamWrapper merging W + ΔW when
/// target_parameters adapts the stacks, then Qwen2-MoE's gated shared expert added in place. PhiMoE's block
/// (DecoderTrace.Phimoe.cs) routes through sparsemixer into the same experts.
/// </summary>
internal sealed partial class DecoderTrace
{
    /// <summary>A sparse layer's router weight and transformers 5's stacked experts: gate_up_proj [E, 2I, h] and
    /// down_proj [E, h, I], each one parameter (the checkpoint's per-expert tensors are stacked when loading).</summary>
    private sealed class MoeParams(LinearParams router, Param gateUp, Param down)
    {
        public LinearParams Router { get; } = router;
        public Param GateUp { get; } = gateUp;
        public Param Down { get; } = down;
        public LinearParams? SharedGate { get; set; }
        /// <summary>PEFT target_parameters (ParamWrapper) on a stack: its A [r·E, rows] and B [columns, r·E].</summary>
        public (Param A, Param B)? GateUpLora { get; init; }
        public (Param A, Param B)? DownLora { get; init; }
        /// <summary>gpt_oss: the stacks' biases, gate_up_proj_bias [E, 2I] and down_proj_bias [E, h].</summary>
        public (Param GateUp, Param Down)? Biases { get; init; }
    }

    /// <summary>The router and the stacks in registration order. The router is a parameter of its module and the stacks are
    /// plain parameters (not nn.Linear), so neither is quantized: frozen, they stay 16-bit (fp32 after kbit preparation).</summary>
    private MoeParams AddMoe(int index, LayerProfile layer, LinearUse router, bool training)
    {
        long h = _a.HiddenSize, experts = _a.NumExperts, width = _a.ExpertWidth;
        var weight = Add(router.In * router.Out, training && router.Trainable);
        // An nn.Linear router that LoRA adapts (PhimoeRouter, called as a module that returns its logits; the selection never
        // adapts Llama4Router or DeepseekV2's gate, see RouterCall): its A and B are built after the base, as PEFT adds
        // them, and its branch runs in the router's linear like any adapted linear's.
        Param? routerA = null, routerB = null;
        if (training && router.Lora && _p.Selection.Lora is { } routerLora)
        {
            routerA = Add((long)routerLora.Rank * router.In, true, _ad);
            routerB = Add(router.Out * (long)routerLora.Rank, true, _ad);
            _adapters.Add(routerA);
            _adapters.Add(routerB);
        }
        // An FP8 checkpoint's stacks are FP8Expert's: one byte per weight and each expert's gate, up and down block scales.
        long? gateUpFp8 = Fp8Checkpoint ? experts * (2 * width * h + 2 * _a.Fp8BlockScaleBytes(width, h)) : null;
        long? downFp8 = Fp8Checkpoint ? experts * (h * width + _a.Fp8BlockScaleBytes(h, width)) : null;
        var gateUp = Add(experts * 2 * width * h, training && layer.ExpertsTrainable, storedBytes: gateUpFp8);
        var down = Add(experts * h * width, training && layer.ExpertDownTrainable, storedBytes: downFp8);
        (Param, Param)? Factors(string name)
        {
            if (!training || layer.ExpertStackLoraElements == 0 || _p.Selection.Lora is not { } lora) return null;
            long rows, columns, stacked;
            if (_p.Selection.StackedExpertGroups().FirstOrDefault(g => g.Layer == index && g.Name == name) is { } g)
                (rows, columns, stacked) = (g.Rows, g.Columns, g.Experts);
            else if (AdaptedStack(index, name) is { } t)
                // A checkpoint that stores the stack itself (gpt_oss): [E, d1, d2], factors over r·E.
                (rows, columns, stacked) = (t.Shape[1], t.Shape[2], t.Shape[0]);
            else return null;
            long rank = (long)lora.Rank * stacked;
            var a = Add(rank * rows, true, _ad);
            var b = Add(columns * rank, true, _ad);
            _adapters.Add(a);
            _adapters.Add(b);
            return (a, b);
        }
        var biases = _a.MoeLoop == MoeTrainingLoop.GptOss
            ? (Add(experts * 2 * width, training && layer.ExpertsTrainable), Add(experts * h, training && layer.ExpertDownTrainable))
            : ((Param, Param)?)null;
        return new MoeParams(new LinearParams(router, weight, routerA, routerB), gateUp, down)
        {
            GateUpLora = Factors("gate_up_proj"),
            DownLora = Factors("down_proj"),
            Biases = biases,
        };
    }

    /// <summary>The layer's stacked expert parameter <paramref name="name"/> when target_parameters adapts it as stored.</summary>
    private ParameterTensor? AdaptedStack(int layer, string name)
    {
        var tensors = _a.Tensors;
        for (int ti = 0; ti < tensors.Count; ti++)
        {
            var t = tensors[ti];
            if (t.Layer == layer && t.IsExpertStackWeight && t.Module.EndsWith(".experts", StringComparison.Ordinal)
                && t.Name.EndsWith("." + name, StringComparison.Ordinal) && _p.Selection.IsAdaptedAt(ti))
                return t;
        }
        return null;
    }

    /// <summary>
    /// The stack a grouped matmul reads: the parameter itself, or under PEFT's ParamWrapper the parametrized weight
    /// W + ΔW (peft/tuners/lora/layer.py, torch.nn.utils.parametrize), computed when the experts read it. ΔW = B·A·scaling
    /// is a stack-sized tensor whose gradient reaches A and B; the sum is a tensor of its own, which the matmul keeps for
    /// its input's gradient; AddBackward hands the sum's gradient to ΔW unchanged.
    /// </summary>
    private int StackWeight(Param stack, (Param A, Param B)? lora, int ce, out bool merged)
    {
        merged = lora is not null;
        if (lora is not { } f) return -1;
        int delta = _t.New(ce * stack.Elements);
        _t.Op(delta, [], weights: [new WeightGrad(f.A, _ad), new WeightGrad(f.B, _ad)]);
        int sum = _t.New(ce * stack.Elements);
        _t.AddInPlace(sum, delta);
        _t.Drop(delta);
        return sum;
    }

    private int MoeBlock(LayerParams layer, MoeParams moe, int x, int xb)
    {
        long tokens = T, experts = _a.NumExperts, k = _a.ExpertsPerToken;
        if (_a.MoeLoop == MoeTrainingLoop.GptOss)
        {
            // GptOssTopKRouter: F.linear with its bias, top-k of the logits (keeping the indices), softmax over the k values
            // in their own dtype; no renormalisation.
            int routerLogits = Linear(x, xb, moe.Router, out int rb);
            int topValues = _t.New(rb * tokens * k), topIndices = _t.New(8 * tokens * k);
            _t.Op(topValues, [routerLogits], saved: [topIndices]);
            _t.Drop(routerLogits);
            int softmax = Softmax(topValues, rb * tokens * k);
            _t.Drop(topValues);
            int routed = GroupedMmExperts(x, xb, softmax, moe, weightBytes: rb);
            _t.Drop(topIndices, softmax);
            return routed;
        }
        if (_a.MoeLoop == MoeTrainingLoop.Phimoe) return PhimoeBlock(moe, x, xb);
        if (_a.MoeLoop == MoeTrainingLoop.DeepseekV3) return DeepseekBlock(layer, moe, x, xb);
        if (_a.MoeLoop == MoeTrainingLoop.Llama4) return Llama4Block(layer, moe, x, xb);
        // TopKRouter: F.linear, softmax(logits.float()), top-k of the probabilities (top-k keeps its indices).
        int logits = Linear(x, xb, moe.Router, out int lb);
        int logits32 = logits;
        if (lb < 4) { logits32 = _t.New(4 * tokens * experts); _t.Op(logits32, [logits]); _t.Drop(logits); }
        int probs = Softmax(logits32, 4 * tokens * experts);
        _t.Drop(logits32);
        int topW = _t.New(4 * tokens * k), topI = _t.New(8 * tokens * k);
        _t.Op(topW, [probs], saved: [topI]);
        if (_a.MoeRenormalizesTopK)
        {
            // top_w /= top_w.sum(-1, keepdim=True) in place: when the weights need a gradient autograd keeps a copy of them
            // from before the division (and the sum); the tape sees that copy as the old tensor and the result as a new one.
            int sum = _t.New(4 * tokens);
            _t.Op(sum, [topW]);
            if (_t.Recording && _t.RequiresGrad(topW))
            {
                int divided = _t.New(4 * tokens * k);
                _t.Op(divided, [topW, sum], saved: [topW, sum]);
                _t.Drop(topW);
                topW = divided;
            }
            _t.Drop(sum);
        }
        int output = _job.ResolvedExperts == ExpertsBackend.GroupedMm ? GroupedMmExperts(x, xb, topW, moe) : EagerExperts(x, xb, topW, moe);
        if (layer.MlpDown is not null)
        {
            // Qwen2-MoE: the shared expert on every token, scaled by sigmoid(shared_expert_gate(x)), added in place.
            int shared = Mlp(layer, x, xb);
            if (moe.SharedGate is { } gateParams)
            {
                int gate = Linear(x, xb, gateParams, out int gb);
                int sigmoid = _t.New(gb * tokens);
                _t.Op(sigmoid, [gate], saved: [sigmoid]);
                _t.Drop(gate);
                int sb = (int)(_t.Bytes(shared) / (tokens * _a.HiddenSize));
                int scaled = _t.New(Math.Max(gb, sb) * tokens * _a.HiddenSize);
                _t.Op(scaled, [sigmoid, shared], saved: [sigmoid, shared]);
                _t.Drop(sigmoid, shared);
                shared = scaled;
            }
            _t.AddInPlace(output, shared);
            _t.Drop(shared);
        }
        // The block's locals (the router's probabilities are its discarded first output) die as it returns.
        _t.Drop(topI, topW, probs);
        return output;
    }

    /// <summary>grouped_mm_experts_forward: its locals hold every routed pair until it returns.</summary>
    private int GroupedMmExperts(int x, int xb, int topW, MoeParams moe, int weightBytes = 4)
    {
        long tokens = T, h = _a.HiddenSize, experts = _a.NumExperts, width = _a.ExpertWidth, pairs = tokens * _a.ExpertsPerToken;
        // grouped_mm is not autocast: its input is cast to the stacks' dtype.
        int ce = moe.GateUp.Elements > 0 ? (int)(moe.GateUp.StorageBytes / moe.GateUp.Elements) : _c;
        // token_idx = arange(T).unsqueeze(1).expand(-1, k).reshape(-1): the expanded view is not contiguous, so a copy.
        int arange = _t.New(8 * tokens);
        int tokenIdx = _t.New(8 * pairs);
        _t.Drop(arange);
        int selected = _t.New(xb * pairs * h);
        _t.Op(selected, [x], saved: [tokenIdx]);
        int perm = ArgSort(pairs);
        int inversePerm = ArgSort(pairs);
        int expertsSorted = _t.New(8 * pairs);
        int weightsSorted = _t.New(weightBytes * pairs);
        _t.Op(weightsSorted, [topW], saved: [perm]);
        int selectedSorted = _t.New(xb * pairs * h);
        _t.Op(selectedSorted, [selected], saved: [perm]);
        // offsets = cumsum(histc(experts_sorted.float(), bins=E), 0).to(int32)
        int asFloat = _t.New(4 * pairs);
        int histogram = _t.New(4 * experts);
        _t.Drop(asFloat);
        int cumulative = _t.New(4 * experts);
        _t.Drop(histogram);
        int offsets = _t.New(4 * experts);
        _t.Drop(cumulative);
        int input = selectedSorted;
        if (xb != ce) { input = _t.New(ce * pairs * h); _t.Op(input, [selectedSorted]); }
        else _t.Hold(input);
        int gateUpWeight = StackWeight(moe.GateUp, moe.GateUpLora, ce, out bool gateUpMerged);
        int gateUp = _t.New(ce * pairs * 2 * width);
        GroupedMm(gateUp, input, moe.GateUp, gateUpWeight, offsets, ce);
        if (moe.Biases is { } b) gateUp = AddGatheredBias(gateUp, b.GateUp, expertsSorted, ce * pairs * 2 * width);
        int product = moe.Biases is null ? SwiGlu(gateUp, ce * pairs * width) : GptOssGlu(gateUp, ce * pairs * width);
        int downWeight = StackWeight(moe.Down, moe.DownLora, ce, out bool downMerged);
        int down = _t.New(ce * pairs * h);
        GroupedMm(down, product, moe.Down, downWeight, offsets, ce);
        if (moe.Biases is { } bd) down = AddGatheredBias(down, bd.Down, expertsSorted, ce * pairs * h);
        // out * weights.unsqueeze(-1), promoted to the weights' dtype (fp32 from the TopKRouters); each operand is kept for
        // the other's gradient, and the backward forms grad·operand at the promoted width before reducing or casting it.
        int wp = Math.Max(ce, weightBytes);
        int weighted = _t.New(wp * pairs * h);
        if (_t.Recording)
        {
            bool weightsGrad = _t.RequiresGrad(weightsSorted), outGrad = _t.RequiresGrad(down);
            int[] saved = weightsGrad && outGrad ? [down, weightsSorted] : weightsGrad ? [down] : outGrad ? [weightsSorted] : [];
            long[] temporaries = weightsGrad && outGrad && ce != wp ? [wp * pairs * h, wp * pairs * h] : weightsGrad || (outGrad && ce != wp) ? [wp * pairs * h] : [];
            _t.Op(weighted, [down, weightsSorted], saved: saved, backwardTemporaries: temporaries);
        }
        _t.Drop(down);
        // out[inv_perm].view(T, k, h).sum(1).to(x.dtype): one expression whose temporaries die with it. The gather and the
        // sum are one node here: its backward scatters the gradient into a [pairs, h] tensor (the sum's is a view).
        int unsorted = _t.New(wp * pairs * h);
        int summed = _t.New(wp * tokens * h);
        _t.Op(summed, [weighted], saved: [inversePerm]);
        _t.Drop(unsorted);
        int output = summed;
        if (wp != xb) { output = _t.New(xb * tokens * h); _t.Op(output, [summed]); _t.Drop(summed); }
        _t.Drop(tokenIdx, selected, perm, inversePerm, expertsSorted, weightsSorted, selectedSorted, offsets, input, gateUp, product, weighted);
        if (gateUpMerged) _t.Drop(gateUpWeight);
        if (downMerged) _t.Drop(downWeight);
        return output;
    }

    /// <summary>gate, up = gate_up.chunk(2) (views, which keep gate_up alive); silu(gate) keeps the gate view, the product
    /// keeps silu's output and the up view. Returns the product.</summary>
    private int SwiGlu(int gateUp, long halfBytes)
    {
        var (gate, up) = _t.Chunk2(gateUp, halfBytes);
        int act = _t.New(halfBytes);
        _t.Op(act, [gate], saved: [gate]);
        int product = _t.New(halfBytes);
        _t.Op(product, [act, up], saved: [act, up]);
        _t.Drop(act, gate, up);
        return product;
    }

    /// <summary>GptOssExperts._apply_gate on interleaved gate/up views: gate clamped above at swiglu_limit, up clamped both
    /// ways (each clamp keeps gate_up), glu = gate · sigmoid(1.702 · gate) (the sigmoid keeps its output, the product both
    /// factors), then (up + 1) · glu (both factors kept). Returns that product.</summary>
    private int GptOssGlu(int gateUp, long halfBytes)
    {
        // gate_up[..., ::2] and gate_up[..., 1::2]: two half views (their gradients meet in one gate_up-sized tensor).
        var (gateView, upView) = _t.Chunk2(gateUp, halfBytes);
        int gate = _t.New(halfBytes);
        _t.Op(gate, [gateView], saved: [gateView]);
        int up = _t.New(halfBytes);
        _t.Op(up, [upView], saved: [upView]);
        _t.Drop(gateView, upView);
        int scaled = _t.New(halfBytes);
        _t.Op(scaled, [gate]);
        int sigmoid = _t.New(halfBytes);
        _t.Op(sigmoid, [scaled], saved: [sigmoid]);
        _t.Drop(scaled);
        int glu = _t.New(halfBytes);
        _t.Op(glu, [gate, sigmoid], saved: [gate, sigmoid]);
        _t.Drop(gate, sigmoid);
        int upPlusOne = _t.New(halfBytes);
        _t.Op(upPlusOne, [up]);
        _t.Drop(up);
        int product = _t.New(halfBytes);
        _t.Op(product, [upPlusOne, glu], saved: [upPlusOne, glu]);
        _t.Drop(upPlusOne, glu);
        return product;
    }

    /// <summary>out + bias[experts_sorted]: the bias rows gathered per pair (the gather keeps its index when the bias
    /// trains), then added. Returns the sum; the matmul output and the gathered rows die with the statement.</summary>
    private int AddGatheredBias(int output, Param bias, int expertsSorted, long bytes)
    {
        int rows = _t.New(bytes);
        _t.Op(rows, [], saved: bias.Trainable ? [expertsSorted] : [], weights: [new WeightGrad(bias, bias.Bytes)]);
        int sum = _t.New(bytes);
        _t.Op(sum, [output, rows]);
        _t.Drop(output, rows);
        return sum;
    }

    /// <summary>torch._grouped_mm (derivatives.yaml): the input's gradient reads the weight, the weight's reads the input,
    /// both read the offsets. A merged ParamWrapper weight is a tensor with a gradient of its own.</summary>
    private void GroupedMm(int output, int input, Param stack, int merged, int offsets, int ce)
    {
        if (merged < 0)
        {
            _t.Op(output, [input], saved: stack.Trainable ? [input, offsets] : [offsets], weights: [new WeightGrad(stack, ce)]);
            return;
        }
        if (!_t.Recording) return;
        bool inputGrad = _t.RequiresGrad(input);
        _t.Op(output, [input, merged], saved: inputGrad ? [input, merged, offsets] : [input, offsets]);
    }

    /// <summary>
    /// MixtralExperts.forward's eager loop (transformers 5 without grouped_mm), frozen or trainable stacks: a zeroed output; under
    /// no_grad the one-hot mask [T, k, E] (int64, alive through the loop) and the experts hit; then for each expert its
    /// routed rows (torch.where's [n, 2] int64 positions, which the row gather and index_add_ share), gate_up on its slice of
    /// the stack, SwiGLU, down, times the gathered routing weight (fp32), cast back and index_add_'ed into the output.
    /// Routing is taken as uniform (the ledger's assumption too): each expert gets T·k/E rows.
    /// </summary>
    private int EagerExperts(int x, int xb, int topW, MoeParams moe, int weightBytes = 4)
    {
        long tokens = T, h = _a.HiddenSize, experts = _a.NumExperts, width = _a.ExpertWidth, pairs = tokens * _a.ExpertsPerToken;
        int ob = _amp ? 2 : _c;
        int output = _t.New(xb * tokens * h);
        int oneHot = _t.New(8 * pairs * experts);
        int perExpert = _t.New(8 * experts), hitMask = _t.New(experts);
        _t.Drop(perExpert);
        long hitCount = Math.Min(experts, pairs);
        int hit = _t.New(8 * hitCount);
        _t.Drop(hitMask);
        for (long e = 0; e < hitCount; e++)
        {
            long n = pairs / hitCount + (e < pairs % hitCount ? 1 : 0);
            int where = _t.New(16 * n);
            int rows = _t.New(xb * n * h);
            _t.Op(rows, [x], saved: [where]);
            int gateUp = ExpertLinear(rows, xb, moe.GateUp, h, 2 * width, n, ob);
            _t.Drop(rows);
            int product = SwiGlu(gateUp, ob * n * width);
            _t.Drop(gateUp);
            int down = ExpertLinear(product, ob, moe.Down, width, h, n, ob);
            _t.Drop(product);
            // top_w[tokens, slots, None]: a gather in the routing weights' dtype (fp32 from the TopKRouters) that keeps its
            // positions.
            int weight = _t.New(weightBytes * n);
            _t.Op(weight, [topW], saved: [where]);
            int wp = Math.Max(ob, weightBytes);
            int weighted = _t.New(wp * n * h);
            if (_t.Recording)
            {
                bool weightGrad = _t.RequiresGrad(weight), outGrad = _t.RequiresGrad(down);
                int[] saved = weightGrad && outGrad ? [down, weight] : weightGrad ? [down] : outGrad ? [weight] : [];
                long[] temporaries = weightGrad ? [wp * n * h] : [];
                _t.Op(weighted, [down, weight], saved: saved, backwardTemporaries: temporaries);
            }
            _t.Drop(down, weight);
            int source = weighted;
            if (wp != xb) { source = _t.New(xb * n * h); _t.Op(source, [weighted]); _t.Drop(weighted); }
            _t.IndexAddInPlace(output, source, [where, source]);
            _t.Drop(source, where);
        }
        _t.Drop(hit, oneHot);
        return output;
    }

    /// <summary>F.linear on one expert's slice of a stack (<c>self.gate_up_proj[expert_idx]</c>, a view): under AMP a stack
    /// not already in 16 bits is cast anew for every expert (autocast caches casts of leaf tensors only), and the copy is
    /// kept for the input's gradient. A trainable stack (full finetuning) keeps the input for its gradient, which the
    /// slice's SelectBackward writes into a zero tensor of the whole stack (derivatives.yaml select_backward) before
    /// AccumulateGrad adds it into .grad: one stack-sized tensor per expert, through the slice's own gradient (and, under
    /// AMP, its fp32 cast).</summary>
    private int ExpertLinear(int input, int inBytes, Param stack, long inWidth, long outWidth, long rows, int ob)
    {
        int x = input;
        if (_amp && inBytes == 4) { x = _t.New(2 * rows * inWidth); _t.Op(x, [input]); }
        else _t.Hold(input);
        int weight = -1;
        if (_amp && _job.IsTraining && stack.StorageBytes != 2 * stack.Elements) weight = _t.New(2 * inWidth * outWidth);
        int output = _t.New(ob * rows * outWidth);
        bool inputGrad = _t.Recording && _t.RequiresGrad(x);
        if (stack.Trainable)
        {
            long slice = inWidth * outWidth;
            int[] saved = weight >= 0 && inputGrad ? [x, weight] : [x];
            long[] sliceGradients = weight >= 0 ? [2 * slice, 4 * slice] : [stack.Bytes * slice];
            _t.Op(output, [x], saved: saved, weights: [new WeightGrad(stack, stack.Bytes)], backwardTemporaries: sliceGradients);
        }
        else _t.Op(output, [x], saved: weight >= 0 && inputGrad ? [weight] : []);
        if (weight >= 0) _t.Drop(weight);
        _t.Drop(x);
        return output;
    }

    /// <summary>torch.argsort: sort's values and indices, the values dropped.</summary>
    private int ArgSort(long n)
    {
        int values = _t.New(8 * n), indices = _t.New(8 * n);
        _t.Drop(values);
        return indices;
    }
}
