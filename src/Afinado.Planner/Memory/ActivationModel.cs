using Afinado.Planner.Architecture;

namespace Afinado.Planner.Memory;

/// <summary>Bytes saved for backward, split the way the ledger shows them.</summary>
internal struct SavedBytes
{
    public double Norms, AttentionProjections, AttentionCore, AttentionScores, Mlp, Lora, DropoutMasks;
    public readonly double Total => Norms + AttentionProjections + AttentionCore + AttentionScores + Mlp + Lora + DropoutMasks;
    /// <summary>The part of <see cref="Total"/> saved after the layer's attention (second norm, MLP with its LoRA, second
    /// dropout mask): not yet allocated while the attention's temporaries are in flight. Not added to Total.</summary>
    public double AfterAttention;

    public static SavedBytes operator *(SavedBytes a, double k) => new()
    {
        Norms = a.Norms * k, AttentionProjections = a.AttentionProjections * k, AttentionCore = a.AttentionCore * k,
        AttentionScores = a.AttentionScores * k, Mlp = a.Mlp * k, Lora = a.Lora * k, DropoutMasks = a.DropoutMasks * k,
        AfterAttention = a.AfterAttention * k,
    };

    public static SavedBytes operator +(SavedBytes a, SavedBytes b) => new()
    {
        Norms = a.Norms + b.Norms, AttentionProjections = a.AttentionProjections + b.AttentionProjections,
        AttentionCore = a.AttentionCore + b.AttentionCore, AttentionScores = a.AttentionScores + b.AttentionScores,
        Mlp = a.Mlp + b.Mlp, Lora = a.Lora + b.Lora, DropoutMasks = a.DropoutMasks + b.DropoutMasks,
        AfterAttention = a.AfterAttention + b.AfterAttention,
    };
}

/// <summary>
/// Saved-for-backward tensors of one decoder layer, derived op by op from what PyTorch autograd keeps (llm.c-style explicit
/// list; memory.md §1.2 adapted to modern decoders). Conventions: T = b·s tokens; c = bytes of a matmul output
/// (2, or 4 in fp32); r = bytes of the residual stream (4 under AMP with fp32 weights, else c).
/// <list type="bullet">
/// <item>A linear saves its input only when its weight trains (autograd needs x for dW, only W for dx).</item>
/// <item>HF RMSNorm upcasts to fp32 and saves that copy (4 B/elt) when the input needs a gradient, plus the normalised
/// value when its weight trains. LayerNorm saves its input. With <c>Compile</c> a fused norm saves only its input.</item>
/// <item>SwiGLU: silu saves its input, the product saves both factors, down saves the product (3–4 tensors of width f);
/// fused (compile): gate, up and the product.</item>
/// <item>Eager attention saves the fp32 softmax (4·b·a·s²) plus its 16-bit copy, and repeat_kv copies of K and V.
/// SDPA (flash / memory-efficient / CPU flash) saves q, k, v, the output and a fp32 log-sum-exp per head and token.</item>
/// <item>LoRA (PEFT): lora_A saves its input — a private dropout copy plus a 1-byte mask when dropout &gt; 0 (peft #2196) —
/// and lora_B saves A's output (rank wide).</item>
/// </list>
/// </summary>
internal static class ActivationModel
{
    public static SavedBytes Layer(ModelArchitecture a, LayerProfile L, in ActivationSettings s)
    {
        var saved = new SavedBytes();
        if (!L.Active) return saved;
        double T = s.Tokens, c = s.C, r = s.R, h = a.HiddenSize, q = a.QueryWidth, kv = a.KvWidth;
        bool gIn = L.InputRequiresGrad;

        // Norm 1 (and the shared normalised input of q/k/v).
        saved.Norms += NormSaved(a, gIn, L.Norm1Trainable, s) * T * h;
        bool y1Grad = gIn || L.Norm1Trainable;
        // The LoRA terms the helpers add through `loraPerToken` are per token like their return values; both scale by T.
        double loraPerToken = 0;
        var mla = a.Mla is { } latent && L.AttnIn.Count == (latent.QueryRank is null ? 3 : 4) ? latent : null;
        if (mla is null) saved.AttentionProjections += LinearInputs(L.AttnIn, h, s, ref loraPerToken) * T;
        else
        {
            var (inputs, norms) = LatentAttentionInputs(mla, L, y1Grad, s, ref loraPerToken);
            saved.AttentionProjections += inputs * T;
            saved.Norms += norms * T;
        }
        bool attnGrad = y1Grad || L.AttnInAny;

        if (attnGrad)
        {
            // (Llama 4's weightless L2 norm runs on its RoPE layers only.)
            if (a.QkNorm && !L.NoRope) saved.AttentionCore += T * ((s.Compile ? r : 4) * (q + kv) + (L.QkNormTrainable && !s.Compile ? r * (q + kv) : 0));
            bool repeat = a.NumKvHeads < a.NumHeads;
            // MLA: its own q, k and v (the scores below are eager attention's as for any model).
            if (mla is not null) saved.AttentionCore += T * LatentAttentionCore(a, mla, s);
            if (s.SdpaMath && mla is null)
            {
                // SDPA's math fallback (aten _scaled_dot_product_attention_math): K/V repeated to the query's heads
                // (enable_gqa), q and k each scaled by √scale, scores = q·kᵀ, softmax, out = p·v. Saved: scaled q, scaled
                // repeated k, repeated v (all at query width) and the softmax output (c·b·a·s²); no log-sum-exp.
                saved.AttentionCore += T * c * 3 * q;
                saved.AttentionScores += c * s.Batch * a.NumHeads * s.Seq * (double)s.Seq;
            }
            else if (s.Kernel == AttentionKernel.Eager)
            {
                double kvSaved = repeat ? q : kv;
                if (mla is null) saved.AttentionCore += T * c * (q + 2 * kvSaved);
                double rows = (double)s.Batch * a.NumHeads * s.Seq, pairs = rows * s.Seq;
                if (a.AttentionSinks)
                    // gpt_oss eager_attention_forward (bench/interop/sinks_attention_saved.py, SinksAttentionInteropTests): the
                    // softmax over s + 1 columns in the logits' dtype (the product with V reads the same tensor) and the row
                    // maximum's int64 indices; cat, the sink's expand and the subtraction keep nothing.
                    saved.AttentionScores += c * rows * (s.Seq + 1) + 8 * rows + (s.Dropout > 0 ? pairs * (1 + c) : 0);
                else if (Llama4EagerSoftmaxInScoresDtype(a, s))
                    // Llama 4's eager_attention_forward: softmax(attn_weights, dim=-1) in the scores' dtype, whose output the
                    // product with V reads too (with dropout, a 1-byte mask plus the dropped copy).
                    saved.AttentionScores += pairs * (c + (s.Dropout > 0 ? 1 + c : 0));
                else
                    // fp32 softmax output; its 16-bit copy (or, with dropout, a 1-byte mask plus the dropped copy). Under
                    // autocast Llama 4's plain softmax lands here too: softmax is on autocast's fp32 list, and the product
                    // with V casts the probabilities back to 16 bits. Gemma 2's soft-cap (scores / cap, tanh, · cap) keeps
                    // tanh's output.
                    saved.AttentionScores += pairs * (4 + (c < 4 ? c : 0) + (s.Dropout > 0 ? 1 + (c < 4 ? 0 : c) : 0) + (a.AttnLogitSoftcap is null ? 0 : c));
                // Afinado's TorchSharp model builds a bool causal mask per layer that masked_fill keeps for backward.
                if (s.Cpu) saved.AttentionScores += s.Seq * (double)s.Seq;
            }
            else
            {
                // SDPA with native GQA (PyTorch ≥ 2.5, no padding mask) keeps K/V at kv width; Afinado's TorchSharp model
                // repeats K/V before SDPA (TorchSharp has no enable_gqa), so on the CPU they are saved at query width.
                // A sliding layer whose window the sequence reaches gets a mask: transformers then repeats K/V to the
                // query's heads itself (use_gqa_in_sdpa needs no mask), and SDPA's memory-efficient kernel keeps the mask
                // as a bias in the query's dtype.
                bool masked = SlidingMaskedSdpa(a, L, s);
                double kvSaved = (s.Cpu || masked) && repeat ? q : kv;
                if (mla is null) saved.AttentionCore += T * (s.AttentionC * (2 * q + 2 * kvSaved) + 4.0 * a.NumHeads);
                if (masked) saved.AttentionScores += SlidingMaskBias(a, s);
            }
        }
        // o_proj input: SDPA's output is already saved in o_proj's layout; eager makes a contiguous copy.
        if (L.AttnOut is { } o)
        {
            // The fused kernels' output is already in the compute dtype, also under AMP (autocast ran q, k, v in 16 bits), so
            // o_proj's cast is a no-op and it saves that same tensor. (The math fallback's output is not saved by SDPA:
            // o_proj keeps its own contiguous copy.)
            // (flash_attention_2 under MLA pads the values to the query's head width and slices its output: o_proj reads
            // a contiguous copy.)
            bool sharesSdpaOut = s.Fused && s.AttentionC == c && attnGrad && !(mla is not null && s.Kernel == AttentionKernel.Flash);
            if (o.Trainable && !sharesSdpaOut) saved.AttentionProjections += T * c * o.In;
            if (o.Lora) saved.Lora += T * LoraSaved(o, s, shared: o.Trainable || (sharesSdpaOut && s.Dropout == 0));
        }
        // Gemma 2/3's post_attention_layernorm on the attention's output, before the residual add.
        bool fourNorms = a.NormsPerLayer == 4;
        if (fourNorms) saved.Norms += NormSaved(a, attnGrad || L.AttnOut is { Trainable: true } or { Lora: true }, L.Norm2Trainable, s) * T * h;
        bool resid1Grad = gIn || L.AnyTrainable;
        if (s.HiddenDropout) saved.DropoutMasks += T * h;
        double beforeMlp = saved.Total + loraPerToken * T;

        // Norm 2 and the MLP (absent in parallel-attention layouts with one norm).
        bool norm2 = L.NormCount >= 2;
        bool y2Grad = resid1Grad;
        if (norm2)
        {
            saved.Norms += NormSaved(a, resid1Grad, L.Norm2Trainable, s) * T * h;
            y2Grad = resid1Grad || L.Norm2Trainable;
        }
        // A layer with a router is sparse. Qwen MoE models also have dense layers (mlp_only_layers, decoder_sparse_step),
        // and qwen2_moe runs a shared expert beside the routed ones: both are a plain gated MLP, as wide as its down_proj's input.
        if (L.Router is not null) saved.Mlp += MoeSaved(a, L, s, y2Grad, ref loraPerToken) * T + MoeLayerSaved(a, L, s, y2Grad);
        // peft ParamWrapper (target_parameters): the merged weight W + ΔW the expert matmuls consume is a tensor of its own
        // that they save for their input gradients — a full copy of each adapted stack per layer, independent of the tokens.
        saved.Mlp += s.C * L.ExpertStackLoraElements;
        if (L.Router is null || L.MlpDown is not null)
        {
            double width = L.Router is null ? a.IntermediateSize : L.MlpDown!.Value.In;
            // Qwen2-MoE's shared_expert_gate reads the same input as the shared expert (an nn.Linear: all-linear adapts it).
            saved.Mlp += LinearInputs(L.SharedExpertGate is { } gate ? [.. L.MlpIn, gate] : L.MlpIn, h, s, ref loraPerToken) * T;
            bool mlpGrad = y2Grad || L.MlpInAny;
            saved.Mlp += DenseMlpSaved(a, width, mlpGrad, L.MlpDown, s, ref loraPerToken) * T;
        }
        // … and post_feedforward_layernorm on the MLP's output.
        if (fourNorms) saved.Norms += NormSaved(a, y2Grad || L.MlpInAny || L.MlpDown is { Trainable: true } or { Lora: true }, L.Norm2Trainable, s) * T * h;
        saved.Lora += loraPerToken * T;
        if (s.HiddenDropout) saved.DropoutMasks += T * h;
        saved.AfterAttention = saved.Total - beforeMlp;
        return saved;
    }

    /// <summary>
    /// DeepSeek's multi-head latent attention (transformers 5 DeepseekV3Attention; bench/interop/mla_saved.py,
    /// <c>MlaActivationInteropTests</c>), per token: q_a_proj and kv_a_proj_with_mqa read the normalised hidden state as
    /// any q/k/v projection does; q_b_proj and kv_b_proj each read their own latent (the output of q_a_layernorm,
    /// kv_a_layernorm), which they keep when they train or carry an adapter. The latent norms keep their fp32 input when
    /// it needs a gradient — for kv_a_layernorm in fp32 that is a view of kv_a_proj_with_mqa's whole output (the rotary
    /// key included), elsewhere the fp32 copy of the latent — and the normalised latent when their weight trains.
    /// Returns the linear inputs and the norms' bytes.
    /// </summary>
    private static (double Inputs, double Norms) LatentAttentionInputs(LatentAttention mla, LayerProfile L, bool y1Grad, in ActivationSettings s, ref double lora)
    {
        var uses = L.AttnIn;
        bool hasQueryLatent = mla.QueryRank is not null;
        LinearUse kvA = uses[^2], kvB = uses[^1];
        double inputs = LinearInputs([uses[0], kvA], uses[0].In, s, ref lora), norms = 0;
        if (mla.QueryRank is { } qRank)
            Latent(uses[0], uses[1], qRank, 4.0 * qRank, L.QLatentNormTrainable, y1Grad, s, ref inputs, ref norms, ref lora);
        // kv_a_layernorm reads k_pass, a split view of the compressed output: `.to(float32)` copies it unless it is fp32 already.
        double kvUpcast = s.C == 4 ? 4.0 * (mla.KvRank + mla.RopeHeadDim) : 4.0 * mla.KvRank;
        Latent(kvA, kvB, mla.KvRank, kvUpcast, L.KvLatentNormTrainable, y1Grad, s, ref inputs, ref norms, ref lora);
        return (inputs, norms);
    }

    /// <summary>One latent: the a projection's output through its RMSNorm into the b projection.</summary>
    private static void Latent(LinearUse a, LinearUse b, double width, double upcast, bool normTrains, bool y1Grad, in ActivationSettings s,
        ref double inputs, ref double norms, ref double lora)
    {
        double c = s.C;
        bool latentGrad = y1Grad || a.Trainable || a.Lora;
        if (s.Compile) norms += latentGrad || normTrains ? c * width : 0;
        else norms += (latentGrad ? upcast : 0) + (normTrains ? c * width : 0);
        // The b projection's input is the latent itself (autocast's cast of a 16-bit latent is a no-op).
        if (b.Trainable || (b.Lora && s.LoraDropout == 0 && !s.LoraPrivateInput)) inputs += c * width;
        if (b.Lora) lora += LoraSaved(b, s, shared: true);
    }

    /// <summary>
    /// MLA's attention per token, as autograd keeps it: the query and the key (each concatenated from its non-rotary and
    /// rotary parts, qk_head_dim wide per head) and the values, a split view of kv_b_proj's output that keeps all of it
    /// (k_nope and v per head) — except that eager attention's batched matmul copies them when the batch has more than
    /// one sequence. SDPA (the memory-efficient kernel: flash needs equal head widths) adds its output and fp32
    /// log-sum-exp; flash_attention_2 pads the values to qk_head_dim (a new tensor) and keeps its padded output.
    /// Eager attention's scores are counted apart.
    /// </summary>
    private static double LatentAttentionCore(ModelArchitecture a, LatentAttention mla, in ActivationSettings s)
    {
        double heads = a.NumHeads, qk = mla.QkHeadDim, kvB = mla.NopeHeadDim + mla.ValueHeadDim;
        if (s.Kernel == AttentionKernel.Eager) return s.C * heads * (2 * qk + (s.Batch == 1 ? kvB : mla.ValueHeadDim));
        if (s.Kernel == AttentionKernel.Flash) return s.AttentionC * heads * 4 * qk + 4.0 * heads;
        // Values cast for the kernel (fp32 after kbit preparation) are a copy of the view alone.
        double values = s.AttentionC != s.C ? mla.ValueHeadDim : kvB;
        return s.AttentionC * heads * (2 * qk + values + mla.ValueHeadDim) + 4.0 * heads;
    }

    /// <summary>
    /// A sliding-window (or chunked) layer under SDPA once the sequence reaches its window: transformers' masking_utils
    /// then builds a boolean mask instead of letting SDPA run causal (_ignore_causal_mask_sdpa skips it only while
    /// kv_length &lt; local_attention_size). Flash-attention-2 takes the window as an argument and needs no mask.
    /// </summary>
    public static bool SlidingMaskedSdpa(ModelArchitecture a, LayerProfile L, in ActivationSettings s) =>
        s.Kernel == AttentionKernel.Sdpa && !s.SdpaMath && !s.Cpu
        && (s.MaskEveryLayer || L.Sliding && a.SlidingWindow is { } w && s.Seq >= w);

    /// <summary>
    /// The mask SDPA keeps per layer (PyTorch attention.cpp): <c>convert_boolean_attn_mask</c> turns the boolean mask into a
    /// new tensor in the query's dtype (zeros_like of the batch-expanded mask: b·s² elements), and the memory-efficient
    /// kernel saves it as attn_bias for backward; when s is not a multiple of 16, <c>preprocess_mask</c> pads the
    /// head-expanded bias (<c>pad_bias</c>: b·heads·s·⌈s⌉₁₆ elements).
    /// </summary>
    public static double SlidingMaskBias(ModelArchitecture a, in ActivationSettings s)
    {
        double b = s.Batch, seq = s.Seq;
        return seq % 16 == 0 ? s.AttentionC * b * seq * seq : s.AttentionC * b * a.NumHeads * seq * (Math.Ceiling(seq / 16) * 16);
    }

    /// <summary>Bytes per element of the hidden width a norm saves.</summary>
    private static double NormSaved(ModelArchitecture a, bool inputGrad, bool weightTrains, in ActivationSettings s)
    {
        if (!inputGrad && !weightTrains) return 0;
        if (s.Compile || a.FusedLayerNorm) return s.R;
        return (inputGrad ? 4 : 0) + (weightTrains ? s.R : 0);
    }

    /// <summary>Per-token bytes the linears reading one shared input keep (inputs for dW, LoRA inputs).</summary>
    internal static double LinearInputs(List<LinearUse> uses, double width, in ActivationSettings s, ref double lora)
    {
        double bytes = 0;
        bool sharedSaved = false;
        foreach (var l in uses)
        {
            bool needsInput = l.Trainable || (l.Lora && s.LoraDropout == 0 && !s.LoraPrivateInput);
            if (needsInput)
            {
                // Under AMP each consumer casts the fp32 input to its own 16-bit copy; otherwise they share one tensor.
                if (s.R != s.C) bytes += s.C * width;
                else if (!sharedSaved) { bytes += s.C * width; sharedSaved = true; }
            }
            if (l.Lora) lora += LoraSaved(l, s, shared: true);
        }
        return bytes;
    }

    /// <summary>LoRA's own saved tensors per token: dropout copy + mask (when dropout &gt; 0) and A's output.</summary>
    private static double LoraSaved(LinearUse l, in ActivationSettings s, bool shared)
    {
        double bytes = s.LoraC * s.LoraRank;
        // Dropout keeps its output (lora_A's input) and its mask: 1 byte on CUDA (fused native_dropout), but libtorch's CPU
        // path (_dropout_impl: input * bernoulli noise) keeps the noise in the input's dtype (4 B in fp32).
        if (s.LoraDropout > 0) bytes += (s.LoraC + (s.Cpu ? 4 : 1)) * l.In;
        else if (!shared || s.LoraPrivateInput) bytes += s.LoraC * l.In;
        return bytes;
    }

    private static double DenseMlpSaved(ModelArchitecture a, double f, bool mlpGrad, LinearUse? down, in ActivationSettings s, ref double lora)
    {
        double c = s.C, bytes = 0;
        bool gated = a.Mlp == MlpKind.Gated;
        // Eager: act saves its input, the gate·up product saves both factors (3 tensors of width f; 1 for a plain MLP).
        // Compiled: the fused region keeps gate and up outputs and also emits the product that down consumes — calibrated on
        // torchtune's compile delta (memory.md §4.1b, 60.0 → 51.0 GiB), which keeping gate/up alone would overshoot by ~3.5 GiB.
        if (mlpGrad) bytes += (gated ? 3 : 1) * c * f;
        bool productSaved = mlpGrad && gated && s.Compile;
        if (down is { } d)
        {
            if (d.Trainable && !productSaved) bytes += c * f;
            if (d.Lora) lora += LoraSaved(d, s, shared: d.Trainable || productSaved);
        }
        return bytes;
    }

    /// <summary>A MoE block per token, by the loop or backend transformers runs it with: router, k expert MLPs per token,
    /// what the experts backend keeps per routed pair.</summary>
    private static double MoeSaved(ModelArchitecture a, LayerProfile L, in ActivationSettings s, bool y2Grad, ref double lora)
    {
        if (a.MoeLoop == MoeTrainingLoop.GptOss) return GptOssExpertLoop(a, L, s, y2Grad);
        if (a.MoeLoop == MoeTrainingLoop.Llama4) return Llama4ExpertBmm(a, L, s, y2Grad);
        // k: expert MLPs each token passes through (all of them when the block runs every expert densely).
        double h = a.HiddenSize, k = a.ExpertsRunPerToken, c = s.C, bytes = 0;
        bool deepseek = a.MoeLoop == MoeTrainingLoop.DeepseekV3, phimoe = a.MoeLoop == MoeTrainingLoop.Phimoe;
        double rc = deepseek ? DeepseekRoutingBytes(s) : phimoe ? (s.R != s.C ? 4 : c) : c;
        // PhimoeSparseMoeBlock in training multiplies its input in place by uniform noise, which the multiply keeps.
        if (phimoe && a.MoeInputJitter > 0 && y2Grad) bytes += c * h;
        if (L.Router is { } router)
        {
            // DeepseekV3TopkRouter's linear reads hidden_states.type(float32): the input itself in fp32 (then shared with
            // the shared experts' saved input), an fp32 copy in pure 16 bits, autocast's own 16-bit copy under AMP.
            // The TopKRouters' linear reads the block input itself, which trainable shared-expert linears keep already.
            bool sameTensor = s.R == s.C && (!deepseek || rc == c) && L.MlpIn.Any(l => l.Trainable);
            if (router.Trainable && !sameTensor) bytes += (deepseek ? rc : c) * h;
            // A LoRA layer on the router (PhimoeRouter; the selection adapts no other, see RouterCall) runs its branch on
            // the block input, which no frozen consumer keeps: its dropout copy and mask, or the input itself, and A's output.
            if (router.Lora) lora += LoraSaved(router, s, shared: router.Trainable || sameTensor);
            // Mixtral: softmax(dtype=float32); DeepSeek: sigmoid in the router's dtype (gather reads the same tensor);
            // PhiMoE: sparsemixer's two picks (below).
            if (!phimoe) bytes += (deepseek ? rc : 4.0) * a.NumExperts;
            else if (router.Trainable || y2Grad) bytes += SparsemixerSaved(a.NumExperts, rc);
            if (a.MoeGroupLimitedMask && (router.Trainable || y2Grad)) bytes += a.NumExperts;
        }
        // Qwen2-MoE scales its shared expert by sigmoid(shared_expert_gate(x)): the product keeps the sigmoid's output
        // and the shared expert's output.
        if (a.MoeSharedExpertGate && L.MlpDown is not null)
        {
            bool sharedGrad = y2Grad || L.MlpInAny;
            if (sharedGrad) bytes += c * (h + 1);
        }
        // PEFT's ParamWrapper adapts a stacked expert weight in weight space (W + ΔW is the weight the matmul sees), so
        // the experts save their inputs as a trainable weight would and no adapter activations exist.
        bool stacked = L.ExpertStackLoraElements > 0;
        bool expertsTrainable = L.ExpertsTrainable || (stacked && L.ExpertsLora), expertsLora = L.ExpertsLora && !stacked;
        bool expertGrad = y2Grad || expertsTrainable || expertsLora;
        // transformers 5's grouped_mm backend (experts adapted as separate linears exist only in the eager loop's world).
        bool grouped = GroupedExperts(a, s) && !expertsLora;
        // grouped_mm is not autocast: it casts its input to the weight's dtype, so under AMP the experts run in fp32.
        double ce = grouped && s.R != s.C ? 4 : c;
        var es = s with { C = ce };
        if (expertsTrainable || (expertsLora && s.LoraDropout == 0 && !s.LoraPrivateInput)) bytes += k * ce * h;
        var expertDown = new LinearUse(a.ExpertWidth, a.HiddenSize, L.ExpertDownTrainable || (stacked && L.ExpertDownLora), L.ExpertDownLora && !stacked);
        double perExpertLora = 0;
        bytes += k * DenseMlpSaved(a, a.ExpertWidth, expertGrad, expertDown, es, ref perExpertLora);
        lora += k * perExpertLora;
        if (expertsLora) lora += k * 2 * LoraSaved(new LinearUse(a.HiddenSize, a.ExpertWidth, false, true), s, shared: true);
        bool routingGrad = L.Router is { Trainable: true } || y2Grad;
        // Mixtral's and Qwen MoE's TopKRouter (transformers 5) leave the top-k weights in the softmax's fp32.
        if (a.MoeLoop == MoeTrainingLoop.TopKExperts && grouped)
            return bytes + GroupedMmRouting(a, k, ce, h, y2Grad, routingGrad, expertsTrainable, weight: 4, normalize: 4 * (k + 1));
        if (a.MoeLoop == MoeTrainingLoop.TopKExperts)
            return bytes + ExpertLoopRouting(a, k, c, h, routingGrad, expertGrad, weight: 4, normalize: 4 * (k + 1), source: s.R);
        // PhiMoE's loop is Mixtral's: its weights are sparsemixer's softmax picks, index_add_'s source is cast to the
        // block input's dtype.
        if (phimoe && grouped)
            return bytes + GroupedMmRouting(a, k, ce, h, y2Grad, routingGrad, expertsTrainable, weight: rc, normalize: 0);
        if (phimoe)
            return bytes + ExpertLoopRouting(a, k, c, h, routingGrad, expertGrad, weight: rc, normalize: 0, source: s.R);
        // DeepseekV3NaiveMoe (transformers 5): the weights stay in the router's dtype and the weighted output is cast back
        // to the block input's dtype for index_add_. The division keeps the k weights and their sum, which is fp32 also
        // under autocast (sum is on its fp32 list).
        if (deepseek && grouped)
            return bytes + GroupedMmRouting(a, k, ce, h, y2Grad, routingGrad, expertsTrainable, weight: rc, normalize: rc * k + 4);
        if (deepseek)
            return bytes + ExpertLoopRouting(a, k, c, h, routingGrad, expertGrad, weight: rc, normalize: rc * k + 4, source: s.R);
        // The routing-weight multiply keeps each expert output when the router trains.
        if (L.Router is { Trainable: true }) bytes += k * c * h;
        return bytes;
    }

    /// <summary>
    /// GptOssMLP in training (transformers' GptOssExperts loop over stacked [E, h, 2I] weights), per token, as autograd
    /// keeps it (bench/interop/moe_saved.py --gpt-oss, <c>MoeActivationInteropTests</c>): the router keeps its top-k
    /// indices and the softmax over the k logits; each routed pair keeps the gate_up output (both clamps read it), the
    /// clamped gate, its sigmoid, up + 1 and glu, its routing weight, the expert output (for the routing weight's
    /// gradient), the routed positions and index_add_'s source; trainable stacks (full finetuning, PEFT target_parameters)
    /// also keep the expert input and the gated product for the weights' gradients.
    /// </summary>
    private static double GptOssExpertLoop(ModelArchitecture a, LayerProfile L, in ActivationSettings s, bool y2Grad)
    {
        double h = a.HiddenSize, I = a.ExpertWidth, k = a.ExpertsPerToken, c = s.C, bytes = 0;
        bool routerTrainable = L.Router is { Trainable: true };
        bool expertsTrainable = L.ExpertsTrainable || L.ExpertStackLoraElements > 0;
        bool routingGrad = routerTrainable || y2Grad, expertGrad = y2Grad || expertsTrainable;
        // GptOssExperts takes transformers 5's experts backend too; grouped_mm is not autocast, so under AMP it runs in the
        // fp32 weights' dtype.
        bool grouped = GroupedExperts(a, s);
        double ce = grouped && s.R != s.C ? 4 : c;
        if (routerTrainable) bytes += c * h;
        if (routingGrad) bytes += k * (8 + c) + k * ce * h;
        if (expertGrad) bytes += k * (6 * ce * I + c);
        if (!grouped && (routingGrad || expertGrad)) bytes += k * (16 + c * h);
        // grouped_mm: the gather's token index, the permutation and its inverse; trainable biases are gathered by the
        // sorted expert ids, which that gather keeps.
        if (grouped) bytes += k * ((y2Grad ? 8 : 0) + (routingGrad ? 8 : 0) + (expertGrad || routingGrad ? 8 : 0) + (L.ExpertsTrainable ? 8 : 0));
        if (expertsTrainable) bytes += k * ce * (h + I);
        return bytes;
    }

    /// <summary>
    /// Llama4TextMoe in training (transformers models/llama4), per token, as autograd keeps it (bench/interop/moe_saved.py
    /// --llama4, <c>MoeActivationInteropTests</c>): the router's top-k indices (scatter's index) and its fp32 sigmoid over
    /// all E scores; every token repeated for every expert and multiplied by its score, which keeps the repeated hidden
    /// state and a copy of the transposed score column; Llama4TextExperts' two bmm over all E experts keep gate_up (silu
    /// reads its gate half, the product its up half) and the activation; trainable stacks also keep the bmm inputs (the
    /// scaled hidden state, the gated product). Under AMP the residual stream is fp32, so the repeated state is too, and
    /// the first bmm keeps autocast's 16-bit copy of the scaled state. A trainable router keeps its input, the block
    /// input, which a trainable shared expert's linears keep already unless autocast gives each its own copy.
    /// </summary>
    private static double Llama4ExpertBmm(ModelArchitecture a, LayerProfile L, in ActivationSettings s, bool y2Grad)
    {
        double h = a.HiddenSize, I = a.ExpertWidth, E = a.NumExperts, k = a.ExpertsPerToken, c = s.C, r = s.R, bytes = 4 * E;
        bool routerTrainable = L.Router is { Trainable: true };
        bool stacksTrainable = L.ExpertsTrainable || L.ExpertStackLoraElements > 0;
        bool routedGrad = y2Grad || routerTrainable, expertGrad = routedGrad || stacksTrainable;
        if (routerTrainable && !(s.R == s.C && L.MlpIn.Any(l => l.Trainable))) bytes += c * h;
        // The scores need a gradient: top-k's indices and the repeated state (the score multiply's other operand).
        if (routedGrad) bytes += 8 * k + E * r * h;
        if (y2Grad) bytes += E * c;
        if (expertGrad) bytes += E * 3 * c * I;
        // The stacks' gradients: the first bmm's input (the scaled state, or autocast's 16-bit copy of it) and the second's.
        if (stacksTrainable) bytes += E * c * (h + I);
        return bytes;
    }

    /// <summary>
    /// What the eager loop over experts (transformers 5's MixtralExperts and its copies) keeps per token besides the
    /// experts' own MLPs, measured on PyTorch's autograd graph (bench/interop/moe_saved.py, <c>MoeActivationInteropTests</c>):
    /// the routing weights need a gradient whenever the router's input or weight does — then top-k keeps its int64
    /// indices, the renormalising division its operands (Mixtral always, Qwen and DeepSeek with norm_topk_prob), and the
    /// weight multiply each expert's output and its weight; any gradient through the block keeps torch.where's
    /// [routed pairs, 2] int64 positions (the row gather and index_add_ share them) and index_add_'s source, the weighted
    /// output cast to the block input's dtype (derivatives.yaml: <c>source: grad.index_select(dim, index).expand_as(source)</c>).
    /// </summary>
    /// <param name="weight">Bytes of one routing weight as the expert output is multiplied by it (fp32 from the
    /// TopKRouters' softmax).</param>
    /// <param name="normalize">Bytes per token of the renormalising division's operands, the k weights and their sum (Mixtral
    /// divides the fp32 softmax).</param>
    /// <param name="source">Bytes per element of index_add_'s source, the weighted expert output.</param>
    private static double ExpertLoopRouting(ModelArchitecture a, double k, double c, double h, bool routingGrad, bool expertGrad,
        double weight, double normalize, double source)
    {
        double bytes = 0;
        if (routingGrad)
            bytes += 8 * k + (a.MoeRenormalizesTopK ? normalize : 0) + k * (c * h + weight);
        if (routingGrad || expertGrad)
            bytes += 16 * k + k * source * h;
        return bytes;
    }

    /// <summary>The block's experts run through grouped_mm: transformers 5's backend for the stacked experts of Mixtral,
    /// Qwen MoE, DeepSeek, PhiMoE and gpt-oss (Llama 4's bmm over every expert takes no backend).</summary>
    private static bool GroupedExperts(ModelArchitecture a, in ActivationSettings s) =>
        s.GroupedExperts && a.MoeLoop is MoeTrainingLoop.TopKExperts or MoeTrainingLoop.DeepseekV3 or MoeTrainingLoop.Phimoe or MoeTrainingLoop.GptOss;

    /// <summary>
    /// grouped_mm_experts_forward without autograd (transformers 5 integrations/moe.py, the version of commit 8b584a6):
    /// its locals hold every routed pair until it returns — the gathered rows and their sorted copy (c·h each), gate_up
    /// (2·c·I) and the gated product (c·I), the weighted output (promoted to the routing weights' dtype) and its unsorted
    /// copy, the token index, permutation, inverse and sorted expert ids (int64), histc's int32 copy and the sorted
    /// weights — when the k outputs of each token are summed and cast back (both [tokens, h]).
    /// </summary>
    private static double GroupedMmForwardTransient(ModelArchitecture a, in ActivationSettings s)
    {
        double c = s.C, h = a.HiddenSize;
        // Routing weights: DeepSeek's router dtype; sparsemixer's and gpt-oss's softmax in the logits' dtype; the
        // TopKRouters' fp32 softmax.
        double w = a.MoeLoop == MoeTrainingLoop.DeepseekV3 ? DeepseekRoutingBytes(s)
            : a.MoeLoop is MoeTrainingLoop.Phimoe or MoeTrainingLoop.GptOss ? c : 4;
        double wp = Math.Max(c, w), pairs = s.Tokens * a.ExpertsPerToken;
        return pairs * (2 * c * h + 3 * c * a.ExpertWidth + 2 * wp * h + 4 * 8 + 4 + w) + s.Tokens * h * (wp + c);
    }

    /// <summary>
    /// What grouped_mm_experts_forward (transformers 5 integrations/moe.py) keeps per token besides the experts' MLPs,
    /// measured on autograd's graph (bench/interop/moe_saved.py with grouped, <c>MoeActivationInteropTests</c>): the
    /// router's top-k indices and renormalisation as in the loop; per routed pair the gather's token index (when the block
    /// input needs a gradient), the sort permutation (read by the gathers of the rows and of the weights) and its inverse
    /// (restoring the order), the output of the down projection and the routing weight (their product's operands). No
    /// index_add_ source: the k outputs of a token are summed. Once per layer (<see cref="MoeLayerSaved"/>): the int32
    /// offsets both grouped matmuls keep.
    /// </summary>
    private static double GroupedMmRouting(ModelArchitecture a, double k, double ce, double h, bool y2Grad, bool routingGrad,
        bool stacksTrainable, double weight, double normalize)
    {
        double bytes = 0;
        if (routingGrad) bytes += 8 * k + (a.MoeRenormalizesTopK ? normalize : 0) + k * ce * h;
        bool outGrad = y2Grad || stacksTrainable;
        if (outGrad) bytes += k * weight;
        bytes += k * ((y2Grad ? 8 : 0) + (y2Grad || routingGrad ? 8 : 0) + (outGrad || routingGrad ? 8 : 0));
        return bytes;
    }

    /// <summary>
    /// PhiMoE's sparsemixer in training (transformers models/phimoe), per token, measured on autograd's graph
    /// (bench/interop/moe_saved.py --phimoe): each of its two picks keeps a masked_fill's bool mask (E bytes), its softmax
    /// (E weights: gather and MultiplierProcessor read the same tensor) and the gathered weight MultiplierProcessor saves;
    /// the chosen experts' int64 indices are counted with the loop's top-k indices. <paramref name="w"/>: bytes of the
    /// softmax's dtype (the logits', or fp32 under autocast).
    /// </summary>
    private static double SparsemixerSaved(double experts, double w) => 2 * (experts + w * (experts + 1));

    /// <summary>
    /// Bytes per element of DeepseekV3TopkRouter's work (transformers 5, models/deepseek_v3): its linear runs on
    /// <c>hidden_states.type(torch.float32)</c> and <c>self.weight.type(torch.float32)</c>, so the scores, the gathered
    /// top-k weights and their renormalisation are fp32; under autocast the linear runs in the 16-bit dtype and everything
    /// after it follows. (transformers 4.5x's <c>moe()</c> also kept an fp32 accumulator, so its index_add_ source was fp32.)
    /// Measured in fp32 and bf16 (bench/interop/moe_saved.py --deepseek, <c>MoeActivationInteropTests</c>).
    /// </summary>
    private static double DeepseekRoutingBytes(in ActivationSettings s) => s.R != s.C ? s.C : 4;

    /// <summary>
    /// The router weight's copy DeepSeek's router linear saves for its input's gradient, once per layer: an fp32 copy of
    /// the 16-bit weight (<c>self.weight.type(torch.float32)</c>). In fp32 it is the weight itself; under AMP autocast's
    /// 16-bit cast, which the AMP weight-copies line counts with every other linear's.
    /// </summary>
    private static double DeepseekRouterWeightCopy(ModelArchitecture a, LayerProfile L, in ActivationSettings s, bool y2Grad)
    {
        if (a.MoeLoop != MoeTrainingLoop.DeepseekV3 || !y2Grad || L.Router is null) return 0;
        return s.R == s.C && s.C < 4 ? 4.0 * a.NumExperts * a.HiddenSize : 0;
    }

    /// <summary>A MoE layer's saved tensors that do not scale with the tokens: DeepSeek's router weight copy, and under
    /// grouped_mm the int32 offsets [E] of the expert groups (saved whenever either grouped matmul needs a gradient).</summary>
    private static double MoeLayerSaved(ModelArchitecture a, LayerProfile L, in ActivationSettings s, bool y2Grad)
    {
        double bytes = DeepseekRouterWeightCopy(a, L, s, y2Grad);
        bool stacksTrainable = L.ExpertsTrainable || L.ExpertStackLoraElements > 0;
        if (GroupedExperts(a, s) && !(L.ExpertsLora && L.ExpertStackLoraElements == 0) && (y2Grad || stacksTrainable))
            bytes += 4.0 * a.NumExperts;
        return bytes;
    }

    /// <summary>
    /// Eager attention's forward temporaries beyond what is saved: transformers frees the pre-softmax scores only after
    /// the fp32 softmax exists (c·b·a·s²), and <c>softmax(x, dtype=float32)</c> on a bf16 x first makes an fp32 copy of x
    /// (ATen softmax: only CUDA half has the fused half→float path), freed when the softmax returns (4·b·a·s²), so the
    /// larger of the two. TorchSharp keeps the scaled scores and the masked copy (2 × 4 B) until the module's dispose scope
    /// ends. SDPA's math fallback holds its pre-softmax scores (c·b·a·s²) while the softmax runs.
    /// </summary>
    public static double EagerForwardTransient(ModelArchitecture a, in ActivationSettings s)
    {
        double pairs = s.Batch * (double)a.NumHeads * s.Seq * s.Seq;
        if (s.SdpaMath) return s.C * pairs;
        if (s.Kernel != AttentionKernel.Eager) return 0;
        // gpt_oss: the masked scores stay bound until the dropout line, and the concatenated logits live beside their
        // max-subtracted copy, which stays bound until the function returns (c·s·(s + 1) each).
        if (a.AttentionSinks) return s.C * (pairs + s.Batch * (double)a.NumHeads * s.Seq * (s.Seq + 1));
        // Llama 4: the scores live until the softmax in their own dtype exists.
        if (Llama4EagerSoftmaxInScoresDtype(a, s)) return s.C * pairs;
        // TorchSharp's dispose scope also keeps the soft-cap's product (tanh's own output is saved).
        return (s.Cpu ? (a.AttnLogitSoftcap is null ? 2 : 3) * 4 : Math.Max(s.C, s.SoftmaxUpcastCopy ? 4 : 0)) * pairs;
    }

    /// <summary><see cref="EagerForwardTransient"/> in words, branch for branch (GPU; the CPU model's text is the caller's).</summary>
    public static string EagerForwardTransientFormula(ModelArchitecture a, in ActivationSettings s)
    {
        string c = LedgerBuilder.B(s.C);
        if (s.SdpaMath) return $"b·a·s² × {c} B: the math kernel's scores";
        if (a.AttentionSinks) return $"b·a·s² × {c} B masked scores + b·a·s·(s + 1) × {c} B max-subtracted logits (with the sink column)";
        if (Llama4EagerSoftmaxInScoresDtype(a, s)) return $"b·a·s² × {c} B: scores before the softmax in their dtype";
        return s.SoftmaxUpcastCopy && s.C < 4
            ? "b·a·s² × 4 B: softmax(dtype=float32)'s fp32 copy of the scores (the larger of it and the 16-bit scores)"
            : $"b·a·s² × {c} B: scores before the softmax";
    }

    /// <summary>
    /// Afinado's TorchSharp attention (Training/Models/LlamaAttention.cs) calls SDPA only at the 1/√head_dim scale and
    /// without a soft-cap; Gemma 2's cap or a query_pre_attn_scalar other than head_dim takes its explicit path, whose
    /// memory is eager attention's.
    /// </summary>
    public static bool CpuTakesExplicitPath(ModelArchitecture a) =>
        a.AttnLogitSoftcap is not null || (a.QueryPreAttnScalar is { } q && q != a.HeadDim);

    /// <summary>The kernel Afinado's CPU trainer really runs: SDPA asked for, the explicit path taken (see
    /// <see cref="CpuTakesExplicitPath"/>), whatever the step (backprop, or a learning rule's no-grad forward).</summary>
    public static ActivationSettings WithCpuKernel(ModelArchitecture a, in ActivationSettings s) =>
        s.Cpu && s.Kernel == AttentionKernel.Sdpa && CpuTakesExplicitPath(a) ? s with { Kernel = AttentionKernel.Eager } : s;

    /// <summary>
    /// Eager attention's saved scores per layer in words, branch for branch as <see cref="Layer"/> counts their bytes (a
    /// plan's formula column must multiply out to its bytes: gpt_oss's sinks keep one 16-bit softmax over s + 1 columns,
    /// not an fp32 softmax and a copy).
    /// </summary>
    public static string EagerScoresFormula(ModelArchitecture a, in ActivationSettings s)
    {
        string c = LedgerBuilder.B(s.C), dropout = s.Dropout > 0 ? " + dropout mask and copy" : "";
        if (a.AttentionSinks)
            return $"b·heads·s·(s + 1) × {c} B softmax over the sink column + b·heads·s × 8 B row-max indices{dropout}";
        if (Llama4EagerSoftmaxInScoresDtype(a, s))
            return $"b·heads·s² × {c} B softmax in the scores' dtype{dropout}";
        // The 16-bit copy the product with V reads; with dropout, the dropped copy takes its place (plus a 1-byte mask).
        string copy = s.C < 4 ? $" + {c} B copy" : "";
        string softcap = a.AttnLogitSoftcap is null ? "" : $" + {c} B soft-cap tanh";
        string mask = s.Dropout <= 0 ? "" : s.C < 4 ? " + 1 B dropout mask" : $" + 1 B dropout mask + {c} B dropped copy";
        return $"b·heads·s² × (4 B fp32 softmax{copy}{softcap}{mask})" + (s.Cpu ? " + s² B bool causal mask" : "");
    }

    /// <summary>
    /// Llama 4's eager_attention_forward (transformers models/llama4, "llama4 doesn't cast attn weights to fp32") runs
    /// <c>softmax(attn_weights, dim=-1)</c> in the scores' dtype, except under autocast, which puts softmax on its fp32
    /// list. Not Afinado's own CPU model, which is not Llama 4.
    /// </summary>
    public static bool Llama4EagerSoftmaxInScoresDtype(ModelArchitecture a, in ActivationSettings s) =>
        a.Llama4Attention && s.Kernel == AttentionKernel.Eager && !s.Autocast && !s.Cpu;

    /// <summary>
    /// Whether PyTorch's CUDA SDPA dispatch (sdp_utils.cpp select_sdp_backend, PyTorch 2.5–2.11) ends at the math kernel
    /// for a decoder called as transformers calls it (sdpa_attention.py: no mask, is_causal, enable_gqa when kv heads &lt;
    /// heads): flash and cuDNN take only fp16/bf16 and head_dim ≤ 256 (check_dtypes_flash_attention,
    /// check_head_dim_size_flash), and memory-efficient attention, the one fused kernel that takes fp32, rejects unequal
    /// query/key head counts (check_batch_size_and_num_heads_dense; ComfyUI #15135 measured fp32 GQA on torch 2.9
    /// falling to math; pytorch #191085 adding it was closed; transformers #46960 for head_dim &gt; 256). Confirmed by the
    /// H100 rows: fp32 GQA training saves b·a·s² × 4 B per layer.
    /// </summary>
    /// <remarks>Below compute capability 8.0 (<paramref name="preAmpere"/>: Turing, Volta) neither flash nor cuDNN attention
    /// runs (check_flash_attention_hardware_support, check_cudnn_hardware_support: sm80 and up) and memory-efficient
    /// attention takes fp16 and fp32 only (can_use_mem_efficient_attention's less_than_sm80_mem_efficient_dtypes), so
    /// grouped KV heads or bf16 inputs (<paramref name="bf16Inputs"/>) end at the math kernel whatever the width.
    /// <para>With a mask (a static cache's, or a sliding layer's once the sequence reaches its window) transformers repeats
    /// K and V to the query heads itself (<c>use_gqa_in_sdpa</c>: "attention_mask is None" is a condition of native GQA),
    /// so SDPA sees equal head counts (<paramref name="kvRepeated"/>), which the memory-efficient kernel takes.</para></remarks>
    public static bool SdpaFallsBackToMath(ModelArchitecture a, double computeBytes, bool preAmpere = false, bool bf16Inputs = false, bool kvRepeated = false)
    {
        bool grouped = a.NumKvHeads < a.NumHeads && !kvRepeated;
        return preAmpere ? grouped || bf16Inputs : grouped && (computeBytes >= 4 || a.HeadDim > 256);
    }

    /// <summary>Whether every layer's SDPA call gets a mask, so that transformers repeats K and V first: an inference job
    /// with a static cache (its mask spans the cache). Sliding layers get one only once the sequence reaches the window,
    /// layer by layer, which the trace follows.</summary>
    public static bool KvRepeatedForMask(Job job) => !job.IsTraining && job.KvCache == KvCacheKind.Static;

    /// <summary>Largest temporaries while one layer runs backward (gradient buffers of its widest tensors).</summary>
    public static double LayerBackwardTransient(ModelArchitecture a, in ActivationSettings s)
    {
        var (attn, mlp, beside) = BackwardTransientParts(a, s);
        return Math.Max(mlp, attn) + beside;
    }

    /// <summary><see cref="LayerBackwardTransient"/> in words, with both parts' bytes (the formula column adds up).</summary>
    public static string LayerBackwardTransientFormula(ModelArchitecture a, in ActivationSettings s)
    {
        var (attn, mlp, beside) = BackwardTransientParts(a, s);
        string c = LedgerBuilder.B(s.C);
        string attnText = s.Kernel == AttentionKernel.Eager && a.AttentionSinks
            ? $"3 × b·heads·s·(s + 1) × {c} B softmax gradients with the sink column + dq, dk, dv at query width"
            : Llama4EagerSoftmaxInScoresDtype(a, s) ? $"2 × {CallPairsText(s)} × {c} B softmax gradients + dq, dk, dv at query width"
            : s.Kernel == AttentionKernel.Eager ? $"{CallPairsText(s)} × (8 + {c}) B softmax gradients + dq, dk, dv at query width"
            : s.SdpaMath ? $"2 × {CallPairsText(s)} × {c} B (math kernel) + dq, dk, dv at query width"
            : "dq, dk, dv + fp32 dq accumulator (fused SDPA)";
        string mlpText = a.IsMoE ? "3·c × the widest MLP run per token: the routed experts' share or a dense / shared width" : "3·c·f per token";
        return LargerOf(attn, attnText, mlp, mlpText, beside, $"residual gradients (2·b·s·h × {LedgerBuilder.B(s.R)} B)");
    }

    /// <summary>A one-layer transient as its formula column states it: the larger of the attention's and the MLP's part,
    /// each with its bytes, plus what lives beside either; the three numbers add up to the line.</summary>
    private static string LargerOf(double attention, string attentionText, double mlp, string mlpText, double beside, string besideText) =>
        $"larger of attention {LedgerBuilder.N(attention)} B ({attentionText}) and MLP {LedgerBuilder.N(mlp)} B ({mlpText}), " +
        $"+ {LedgerBuilder.N(beside)} B {besideText}";

    private static (double Attention, double Mlp, double Beside) BackwardTransientParts(ModelArchitecture a, in ActivationSettings s)
    {
        double T = s.Tokens, c = s.C, h = a.HiddenSize, q = a.QueryWidth, kv = a.KvWidth;
        // MoE: routed experts are ExpertWidth wide; a qwen MoE dense layer or shared expert runs its full width on every token.
        // Every expert at once (Llama 4's bmm over all E): the gradients of the stacked E × tokens × width products.
        // grouped_mm runs every routed pair at once, so its gradients are as wide as k experts over all the tokens.
        double perToken = a.MoeRunsEveryExpert || GroupedExperts(a, s) ? 1 : a.NumExperts;
        double f = a.IsMoE ? Math.Max(a.ExpertWidth * (double)a.ExpertsRunPerToken / perToken, a.UnroutedMlpWidth) : a.IntermediateSize;
        double mlp = 3 * c * f * T;
        double attn = s.Kernel == AttentionKernel.Eager && a.AttentionSinks
            // gpt_oss: the probabilities' gradient (the sink column's slice scattered back), the softmax backward's
            // output and the row maximum's scattered gradient, c·s·(s + 1) each
            ? 3 * c * s.Batch * (double)a.NumHeads * s.Seq * (s.Seq + 1) + 3 * c * q * T
            // Llama 4 in 16 bits: the probabilities' gradient and the softmax backward's output, both in the scores' dtype
            : Llama4EagerSoftmaxInScoresDtype(a, s) ? 2 * c * CallPairs(a, s) + 3 * c * q * T
            : s.Kernel == AttentionKernel.Eager
            ? (8 + c) * CallPairs(a, s) + 3 * c * q * T
            // math fallback: the scores' gradient and the softmax backward's output, plus dq, dk, dv at query width
            : s.SdpaMath ? 2 * c * CallPairs(a, s) + 3 * c * q * T
            : (c * (q + 2 * kv) + 4 * q) * T;
        return (attn, mlp, 2 * s.R * h * T);
    }

    /// <summary>Score elements one attention call holds: the batch's b·heads·s², or one sequence's heads·s² where the layer
    /// calls attention per sequence (<see cref="ActivationSettings.AttentionCallSeq"/>).</summary>
    private static double CallPairs(ModelArchitecture a, in ActivationSettings s) =>
        s.AttentionCallSeq > 0 ? a.NumHeads * s.AttentionCallSeq * s.AttentionCallSeq : s.Batch * (double)a.NumHeads * s.Seq * s.Seq;

    /// <summary>"b·heads·s²", or the per-call form (<see cref="CallPairs"/>).</summary>
    private static string CallPairsText(in ActivationSettings s) => s.AttentionCallSeq > 0 ? "heads·s² (one sequence per call)" : "b·heads·s²";

    /// <summary>Largest temporaries of one layer's forward without autograd (inference prefill).</summary>
    public static double LayerInferenceTransient(ModelArchitecture a, in ActivationSettings s)
    {
        var (attn, mlp, beside) = InferenceTransientParts(a, s);
        return Math.Max(mlp, attn) + beside;
    }

    /// <summary><see cref="LayerInferenceTransient"/> in words, with the parts it takes the larger of, so that the formula
    /// column multiplies out to the line's bytes.</summary>
    public static string LayerInferenceTransientFormula(ModelArchitecture a, in ActivationSettings s)
    {
        var (attn, mlp, beside) = InferenceTransientParts(a, s);
        string c = LedgerBuilder.B(s.C);
        string attnText = s.Kernel == AttentionKernel.Eager && a.AttentionSinks
            ? $"q,k,v, repeated K/V, b·heads·s² × {c} B masked scores + 2 × b·heads·s·(s + 1) × {c} B logits with the sink column"
            : s.Kernel == AttentionKernel.Eager && Llama4EagerSoftmaxInScoresDtype(a, s)
            ? $"q,k,v, repeated K/V, {CallPairsText(s)} × 2 × {c} B (scores and their softmax)"
            : s.Kernel == AttentionKernel.Eager
            ? $"q,k,v, repeated K/V, {CallPairsText(s)} × ({c} B scores{(s.SoftmaxUpcastCopy ? " + 4 B fp32 copy" : "")} + 4 B fp32 softmax)"
            : s.SdpaMath ? $"q,k,v, scaled q and repeated K/V, {CallPairsText(s)} × 2 × {c} B (math kernel)"
            : "q,k,v,out (fused SDPA: no s² term)";
        string mlpText = a.IsMoE ? "the routed experts' (and shared) MLP inputs and outputs" : $"{(a.Mlp == MlpKind.Gated ? 3 : 2)}·c·f per token";
        return LargerOf(attn, attnText, mlp, mlpText, beside, $"residual and layer input (b·s·h × (2 × {LedgerBuilder.B(s.R)} + {c}) B)");
    }

    /// <summary>A layer's inference temporaries: its attention's and its MLP's (the larger counts), and what lives beside
    /// either (the residual stream and the layer's input).</summary>
    private static (double Attention, double Mlp, double Beside) InferenceTransientParts(ModelArchitecture a, in ActivationSettings s)
    {
        double T = s.Tokens, c = s.C, h = a.HiddenSize, q = a.QueryWidth, kv = a.KvWidth;
        double f = a.IsMoE ? a.ExpertWidth : a.IntermediateSize;
        double mlp = (a.Mlp == MlpKind.Gated ? 3 : 2) * c * f * T * (a.IsMoE ? (double)a.ExpertsPerToken / a.NumExperts + 1.0 / a.NumExperts : 1);
        // Qwen MoE dense layers and shared experts run a full-width MLP over every token.
        if (a.IsMoE) mlp = Math.Max(mlp, 3 * c * a.UnroutedMlpWidth * T);
        // Llama4TextExperts at its down bmm: the scaled E-fold copy of the input and its output (E·T·h each), gate_up
        // (E·T·2I, gate and up are views of it) and the gated product (E·T·I) are alive together.
        if (a.MoeRunsEveryExpert) mlp = Math.Max(mlp, c * T * a.NumExperts * (2.0 * h + 3.0 * a.ExpertWidth));
        if (GroupedExperts(a, s)) mlp = Math.Max(mlp, GroupedMmForwardTransient(a, s));
        double qkv = c * (q + 2 * kv) * T;
        double pairs = CallPairs(a, s);
        double sinkPairs = s.Batch * (double)a.NumHeads * s.Seq * (s.Seq + 1);
        double attn = s.Kernel == AttentionKernel.Eager && a.AttentionSinks
            // gpt_oss: the masked scores, the concatenated logits and their max-subtracted copy (then the softmax output in
            // its place), all in the logits' dtype
            ? qkv + 2 * c * q * T * (a.NumKvHeads < a.NumHeads ? 1 : 0) + c * (pairs + 2 * sinkPairs)
            : s.Kernel == AttentionKernel.Eager
            // During softmax(x, dtype=float32): x (c), its fp32 copy when x is bf16 (ATen softmax converts first; only
            // CUDA half has the fused half→float kernel) and the fp32 output, all live at once; Llama 4's softmax keeps
            // the scores' dtype: x and its output.
            ? qkv + 2 * c * q * T * (a.NumKvHeads < a.NumHeads ? 1 : 0)
              + (Llama4EagerSoftmaxInScoresDtype(a, s) ? 2 * c : c + (s.SoftmaxUpcastCopy ? 4 : 0) + 4) * pairs
            // math fallback: repeated K/V and the scaled q at query width, the scores and the softmax output (both c)
            : s.SdpaMath ? qkv + 3 * c * q * T + 2 * c * pairs
            : qkv + c * q * T + SlidingMaskTransient(a, s);
        return (attn, mlp, 2 * s.R * h * T + c * h * T);
    }

    /// <summary>
    /// What LlamaModel.forward (and the families built on it) keeps until it returns, beside the layer running:
    /// <c>inputs_embeds</c>, the embedding output, still bound after <c>hidden_states</c> moves on (b·s·h in the residual's
    /// dtype); <c>cache_position = torch.arange(s)</c> (int64); and <c>position_embeddings</c>, each rotary embedding's
    /// cos and sin tables of shape (1, s, rotary dim) in the hidden states' dtype (position_ids has batch 1), or GPT-2's
    /// learned <c>position_embeds</c> (1, s, h). Gemma 3 has a local rotary embedding besides the global one; Llama 4's
    /// complex frequencies are not counted here.
    /// </summary>
    public static double ModelForwardLocals(ModelArchitecture a, in ActivationSettings s)
    {
        var (pairs, dim) = a.RotaryTables;
        double tables = pairs * 2 * s.R * s.Seq * dim;
        double positions = a.Positions == PositionKind.Learned ? s.R * s.Seq * a.HiddenSize : 0;
        return s.R * s.Tokens * a.HiddenSize + 8 * s.Seq + tables + positions;
    }

    /// <summary>A sliding layer's SDPA call in a pass that reaches the window (<see cref="SlidingMaskBias"/>): the mask's copy
    /// in the query's dtype and, under GQA, K/V repeated to the query's heads by transformers, while the call runs.</summary>
    private static double SlidingMaskTransient(ModelArchitecture a, in ActivationSettings s)
    {
        if (s.Kernel != AttentionKernel.Sdpa || s.SdpaMath || s.Cpu || s.Seq <= 1) return 0;
        if (!s.MaskEveryLayer && (a.SlidingLayerCount == 0 || a.SlidingWindow is not { } w || s.Seq < w)) return 0;
        double repeated = a.NumKvHeads < a.NumHeads ? 2.0 * s.C * a.QueryWidth * s.Tokens : 0;
        return SlidingMaskBias(a, s) + repeated;
    }
}

/// <summary>
/// Afinado's TorchSharp decoder (src/Afinado.Training/Models) run without autograd on the CPU, op by op. Every module
/// holds what it creates until its dispose scope ends, so a layer's peak is everything its scope has made so far:
/// the decoder's scope keeps the embedding output and every block output until the forward ends (the last layer runs with
/// L hidden states held); a block's scope keeps norm 1, the attention output, the residual and norm 2 while the MLP runs;
/// the MLP's scope keeps gate, silu(gate) and up (the product is in place) when down runs; attention keeps q, k, v,
/// the rotated q and k, the repeat_interleave'd K/V (GQA), the SDPA output and its contiguous copy when o_proj runs
/// (eager: + scores, masked copy and softmax, b·a·s² each, and the bool mask). A LoRA linear adds its B output (out wide)
/// and A output (r wide) before adding in place.
/// </summary>
internal static class TorchSharpNoGradForward
{
    /// <summary>Bytes live inside the last block, at its largest moment.</summary>
    public static double LayerPeak(ModelArchitecture a, LayerProfile L, in ActivationSettings s)
    {
        double T = s.Tokens, c = s.C, h = a.HiddenSize, q = a.QueryWidth, kv = a.KvWidth, f = a.IntermediateSize, r = s.LoraRank;
        double held = a.NumLayers * h;
        double Lora(LinearUse? l) => l is { Lora: true } u ? u.Out + r : 0;
        double attnInLora = L.AttnIn.Count == 0 ? 0 : L.AttnIn.Max(u => Lora(u));
        bool repeat = a.NumKvHeads < a.NumHeads;
        // At o_proj: norm 1, q/k/v, rotated q/k, repeated K/V, SDPA output, contiguous copy, o_proj output (+ its LoRA terms).
        double attention = h + (q + 2 * kv) + (q + kv) + (repeat ? 2 * q : 0) + 2 * q + h + Math.Max(Lora(L.AttnOut), 0);
        attention = Math.Max(attention, h + q + 2 * kv + attnInLora);
        double scores = s.Kernel == AttentionKernel.Eager ? (ScoreTensors(a) * c * s.Batch * a.NumHeads + 1) * s.Seq * s.Seq : 0;
        var gate = L.MlpIn.Count > 0 ? L.MlpIn[0] : (LinearUse?)null;
        var up = L.MlpIn.Count > 1 ? L.MlpIn[1] : gate;
        double mlp = a.Mlp == MlpKind.Gated
            ? Math.Max(Math.Max(f + Lora(gate), 3 * f + Lora(up)), 3 * f + h + Lora(L.MlpDown))
            : Math.Max(f + Lora(gate), 2 * f + h + Lora(L.MlpDown));
        // Norm 1, attention output, residual and norm 2 are held by the block's scope while the MLP runs.
        mlp += 4 * h;
        return Math.Max(c * T * (held + attention) + scores, c * T * (held + mlp));
    }

    /// <summary>The explicit path's b·a·s² tensors: scores, masked copy, softmax; a soft-cap adds tanh's output and its
    /// product with the cap (LlamaAttention: div_ in place, then tanh() and mul(cap) as new tensors).</summary>
    public static int ScoreTensors(ModelArchitecture a) => a.AttnLogitSoftcap is null ? 3 : 5;

    /// <summary>Logits and the cross-entropy's log-softmax (the decoder's hidden states are freed by then); with Gemma 2's
    /// final soft-cap, the head's own moment can be larger: its scope holds the final hidden state, the logits, logits / c,
    /// tanh's output and the product (LlamaForCausalLM.Head) until the forward returns the last of them.</summary>
    public static double LossPeak(ModelArchitecture a, in ActivationSettings s)
    {
        double loss = 2 * s.C * s.Tokens * a.VocabSize;
        return a.FinalLogitSoftcap is null ? loss : Math.Max(loss, s.C * s.Tokens * (4.0 * a.VocabSize + a.HiddenSize));
    }
}

/// <summary>The job facts the activation model reads, resolved once per plan.</summary>
internal readonly record struct ActivationSettings(
    double Batch, double Seq, double C, double R, AttentionKernel Kernel, bool Compile, double Dropout, bool HiddenDropout,
    double LoraRank, double LoraDropout, bool Cpu = false)
{
    /// <summary>Bytes per element on the LoRA branch (adapter dtype, or the autocast dtype under AMP).</summary>
    public double LoraC { get; init; } = C;
    /// <summary>On CUDA, SDPA falls back to its math kernel (see <see cref="ActivationModel.SdpaFallsBackToMath"/>).</summary>
    public bool SdpaMathOnGpu { get; init; }
    public bool SdpaMath => SdpaMathOnGpu && !Cpu && Kernel == AttentionKernel.Sdpa;
    /// <summary>16-bit compute in bf16: softmax(dtype=float32) makes an fp32 copy of its input first.</summary>
    public bool SoftmaxUpcastCopy { get; init; }
    /// <summary>The step runs under autocast (AMP): ops on autocast's fp32 list (softmax among them) run in fp32 whatever
    /// their input's dtype. Not the same as <see cref="R"/> ≠ <see cref="C"/>: a 16-bit LoRA base keeps a 16-bit residual.</summary>
    public bool Autocast { get; init; }
    /// <summary>The LoRA branch casts its input to the adapter dtype and keeps that copy.</summary>
    public bool LoraPrivateInput { get; init; }
    /// <summary>Bytes per element of what the fused attention kernel saves (q, k, v, output): flash_attention_2 casts fp32
    /// inputs to 16 bits; otherwise the compute dtype.</summary>
    public double AttentionC { get; init; } = C;
    /// <summary>Every layer's SDPA gets a materialized mask, sliding or not: Gemma 3 with images attends bidirectionally
    /// within each image (token_type_ids' or_mask_function), which no is_causal call expresses.</summary>
    public bool MaskEveryLayer { get; init; }
    /// <summary>transformers 5 runs stacked MoE experts through grouped_mm (<see cref="ExpertsBackend.GroupedMm"/>).</summary>
    public bool GroupedExperts { get; init; }
    /// <summary>The layer's attention runs one sequence at a time, each of at most this many positions (the Qwen VL towers
    /// split q, k and v by cu_seqlens and call the kernel per image or window, outside flash_attention_2): an inference
    /// forward holds one call's scores, not the batch's. 0: one call over the whole batch.</summary>
    public double AttentionCallSeq { get; init; }
    /// <summary>A fused kernel (SDPA's flash / memory-efficient, or flash_attention_2) runs, not eager or SDPA's math.</summary>
    public bool Fused => Kernel == AttentionKernel.Flash || (Kernel == AttentionKernel.Sdpa && !SdpaMath);

    public double Tokens => Batch * Seq;
}
