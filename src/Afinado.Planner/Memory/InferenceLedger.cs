using Afinado.Planner.Devices;
using static Afinado.Planner.Memory.LedgerBuilder;

namespace Afinado.Planner.Memory;

/// <summary>
/// The inference ledger (generation with a KV cache): weights by storage format, KV cache (kipply, GQA-aware),
/// the prefill activation peak (eager O(s²) vs SDPA), last-position logits, and decode temporaries.
/// </summary>
internal static class InferenceLedger
{
    public static List<LedgerEntry> Entries(ModelProfile p, Job job, DeviceKind device, bool explain)
    {
        _ = device;
        var a = p.Architecture;
        var e = new List<LedgerEntry>(10);
        var w = job.ResolvedWeightsDtype;
        double c = job.Precision.ComputeBytes();
        long all = a.ParameterCount;
        if (a.StoredWeightBytes is { } headerBytes && job.WeightsDtype is null)
        {
            // A checkpoint read from its headers is loaded as stored: its bytes are the weights, whatever their formats.
            e.Add(new(LineKind.Weights, "weights (as stored in the checkpoint)", Phase.Inference, headerBytes,
                explain ? $"sum of {a.Tensors.Count:N0} tensors' bytes in the safetensors headers ({a.StoredDtypes})" : "", "safetensors headers (hf-mem parity)"));
        }
        else if (w == DType.Mxfp4)
        {
            // transformers' Mxfp4HfQuantizer keeps the expert stacks packed (triton matmul_ogs reads them directly, no
            // dequantized copy); the modules_to_not_convert (attention, router, embeddings, head), norms and biases stay bf16.
            long experts = p.ExpertStackElements;
            e.Add(new(LineKind.WeightsFrozenQuantized, "weights: expert stacks (mxfp4)", Phase.Inference, experts * w.Bytes(),
                explain ? $"{N(experts)} params × {w.Bits():0.###} bits / 8 (4-bit values + one 8-bit scale per 32)" : "", "OCP MX spec (MXFP4); gpt_oss *_blocks / *_scales tensors"));
            e.Add(new(LineKind.WeightsSkippedByQuantizer, "weights: attention/router/embeddings/head/norms/biases (bf16)", Phase.Inference, (all - experts) * 2.0,
                explain ? $"{N(all - experts)} params × 2 B" : "", "quantization_config.modules_to_not_convert"));
        }
        else if (w == DType.Fp8 && a.Fp8WeightBlock is { } block)
        {
            // FineGrainedFP8 (transformers): each linear keeps its e4m3 weight and an fp32 weight_scale_inv per block, and
            // its triton kernel multiplies block-wise (no dequantized copy); the head and the router stay bf16.
            long fp8 = a.Fp8Linears.Sum(t => t.Elements);
            long fp32 = a.Fp32Elements;
            e.Add(new(LineKind.WeightsFrozenQuantized, $"weights: linears (fp8, {block.Rows}×{block.Cols} block scales)", Phase.Inference, fp8 + (double)a.Fp8ScaleBytes,
                explain ? $"{N(fp8)} params × 1 B + {N(a.Fp8ScaleBytes)} B of fp32 scales" : "", "quantization_config weight_block_size; transformers FineGrainedFP8"));
            e.Add(new(LineKind.WeightsSkippedByQuantizer, "weights: embeddings/router/head/norms (bf16)", Phase.Inference, (all - fp8 - fp32) * 2.0 + fp32 * 4.0,
                explain ? $"{N(all - fp8 - fp32)} params × 2 B" + (fp32 > 0 ? $" + {N(fp32)} × 4 B (fp32 e_score_correction_bias)" : "") : "",
                "FineGrainedFP8 modules_to_not_convert (lm_head); DeepSeek's router is a parameter, not an nn.Linear"));
        }
        else if (job.StoredFormat is { } q)
        {
            // A GPTQ/AWQ/bitsandbytes checkpoint: each converted linear holds exactly the tensors its library registers.
            var stored = q.Stored(a);
            e.Add(new(LineKind.WeightsFrozenQuantized, $"weights: linears ({q.Description})", Phase.Inference, stored.Bytes,
                explain ? stored.Breakdown : "", q.Source));
            e.Add(new(LineKind.WeightsSkippedByQuantizer, "weights: embeddings/norms/head/unconverted linears (16-bit)", Phase.Inference, (all - stored.Elements) * 2.0,
                explain ? $"{N(all - stored.Elements)} params × 2 B" : "", q.SkipSource));
            e.Add(new(LineKind.DequantizationBuffer, "dequantization buffer", Phase.Inference, stored.LargestLinear * c,
                explain ? $"largest converted linear {N(stored.LargestLinear)} × {B(c)} B" : "", q.KernelSource));
        }
        else if (w.IsQuantized())
        {
            long quantized = p.QuantizableElements;
            e.Add(new(LineKind.WeightsFrozenQuantized, $"weights: linears ({w.Name()})", Phase.Inference, quantized * w.Bytes(),
                explain ? $"{N(quantized)} params × {w.Bits():0.###} bits / 8" : "", "memory.md §1.1 (bytes/param), §1.5 (NF4 constants)"));
            bool stackedExperts = a.RoutedExpertsAreParameters;
            e.Add(new(LineKind.WeightsSkippedByQuantizer, stackedExperts ? "weights: embeddings/norms/head/stacked experts (16-bit)" : "weights: embeddings/norms/head (16-bit)",
                Phase.Inference, (all - quantized) * 2.0, explain ? $"{N(all - quantized)} params × 2 B" : "",
                stackedExperts ? "bitsandbytes replaces nn.Linear modules only (bitsandbytes issue 1849: transformers 5's fused experts stay full precision)"
                : "bitsandbytes / GPTQ keep these unquantized"));
            e.Add(new(LineKind.DequantizationBuffer, "dequantization buffer", Phase.Inference, p.LargestQuantizableLinear * c,
                explain ? $"largest linear {N(p.LargestQuantizableLinear)} × {B(c)} B" : "", "bitsandbytes dequantize per matmul"));
        }
        else
        {
            // DeepSeek-V3 keeps e_score_correction_bias in fp32 (_keep_in_fp32_modules_strict) whatever the dtype.
            long fp32 = w.Bytes() < 4 ? a.Fp32Elements : 0;
            e.Add(new(LineKind.Weights, "weights", Phase.Inference, all * w.Bytes() + fp32 * (4 - w.Bytes()),
                explain ? $"{N(all)} params × {B(w.Bytes())} B ({w.Name()})" + (fp32 > 0 ? $" + {N(fp32)} fp32" : "") : "", "memory.md §1.1 (inference memory = bytes/param × P)"));
        }

        var kv = job.ResolvedKvDtype;
        double perToken = (double)a.NumLayers * a.KvElementsPerTokenPerLayer * kv.Bytes();
        string kvFormula = !explain ? ""
            : a.ValueHeadDim is { } vd && vd != a.HeadDim
                ? $"L {a.NumLayers} · kv_heads {a.NumKvHeads} · (k {a.HeadDim} + v {vd}) · {B(kv.Bytes())} B = {N(perToken)} B/token"
                : $"2 · L {a.NumLayers} · kv_heads {a.NumKvHeads} · head_dim {a.HeadDim} · {B(kv.Bytes())} B = {N(perToken)} B/token";
        bool staticCache = job.KvCache == KvCacheKind.Static;
        // Sliding-window layers keep only their window (transformers' DynamicSlidingWindowLayer / StaticSlidingWindowLayer):
        // a static cache allocates the window at its first update; a dynamic one keeps the whole prompt's storage until
        // the first decode step replaces it with a window-long tensor.
        long ctx = job.ContextTokens;
        bool decodes = ctx > job.Seq;
        long prefillFull = staticCache ? ctx : job.Seq;
        long prefillSliding = a.SlidingCacheTokens(job.Seq, decoded: false, staticCache, ctx);
        long decodeSliding = a.SlidingCacheTokens(ctx, decoded: decodes, staticCache, ctx);
        e.Add(new(LineKind.KvCachePrompt, staticCache ? "KV cache (static: full context from prefill)" : "KV cache (prompt)", Phase.Prefill,
            a.KvCacheBytes(kv.Bytes(), job.Batch, prefillFull, prefillSliding),
            explain ? KvExplain(a, kvFormula, kv.Bytes(), job.Batch, staticCache ? "context" : "s", prefillFull, prefillSliding) : "",
            staticCache ? "transformers StaticLayer.lazy_initialization (max_cache_len at the first update)" : "memory.md §1.4 (kipply, GQA-aware)"));
        e.Add(new(LineKind.KvCacheFullContext, "KV cache (full context)", Phase.Decode, a.KvCacheBytes(kv.Bytes(), job.Batch, ctx, decodeSliding),
            explain ? KvExplain(a, kvFormula, kv.Bytes(), job.Batch, "context", ctx, decodeSliding) : "",
            a.SlidingLayerCount > 0 ? "memory.md §1.4 (kipply, GQA-aware); transformers cache_utils DynamicSlidingWindowLayer / StaticSlidingWindowLayer" : "memory.md §1.4 (kipply, GQA-aware)"));

        var s = TrainingLedger.Settings(p, job, c);
        e.Add(new(LineKind.PrefillActivations, "prefill activations (one layer's temporaries)", Phase.Prefill, ActivationModel.LayerInferenceTransient(a, s),
            explain ? ActivationModel.LayerInferenceTransientFormula(a, s) : "",
            "memory.md §1.2 (eager s² vs SDPA), §3 optimum-benchmark #151"));
        e.Add(new(LineKind.ModelForwardLocals, "model forward locals (inputs_embeds, rotary tables)", Phase.Prefill, ActivationModel.ModelForwardLocals(a, s),
            explain ? $"embedding output b·s·h × {B(s.R)} B, kept by inputs_embeds until the forward returns; cos/sin (1, s, rotary dim) per rotary embedding; cache_position" : "",
            "transformers LlamaModel.forward (inputs_embeds, position_embeddings, cache_position)"));
        if (job.Attention == AttentionKernel.Eager)
            e.Add(new(LineKind.CausalMask, "causal mask (eager)", Phase.Prefill, c * job.Batch * (double)job.Seq * job.Seq,
                explain ? $"b·s² × {B(c)} B" : "", "transformers 4-D causal mask"));
        // A prompt that reaches the sliding window under SDPA: transformers' boolean mask for the forward (a sliding layer's
        // copy of it and repeated K/V are in the layer's temporaries above).
        if (job.Attention == AttentionKernel.Sdpa && job.Seq > 1 && a.SlidingWindow is { } window && job.Seq >= window && a.SlidingLayerCount > 0)
            e.Add(new(LineKind.SlidingWindowMask, "sliding-window mask (SDPA)", Phase.Prefill, (double)job.Seq * job.Seq,
                explain ? "s² × 1 B (bool), built once per forward" : "", "transformers masking_utils sdpa_mask (_ignore_causal_mask_sdpa: kv_length ≥ sliding_window)"));
        double vocab = a.VocabSize;
        e.Add(new(LineKind.LogitsLastPosition, "logits (last position, fp32)", Phase.Inference, job.Batch * vocab * (c + (c < 4 ? 4 : 0)),
            explain ? $"b × V {N(vocab)} × ({B(c)} + fp32 copy)" : "", "transformers generate (logits_to_keep=1)"));
        var decode = s with { Seq = 1 };
        // The widest layer's keys: the whole context where a layer attends globally, else the window.
        long attended = a.SlidingLayerCount < a.NumLayers ? ctx : decodeSliding;
        double decodeScores = job.Attention == AttentionKernel.Eager ? (4 + c) * job.Batch * (double)a.NumHeads * attended : 0;
        // A static cache needs a mask over its full length, and SDPA with a mask gets no native GQA: repeat_kv copies
        // K and V to the query heads over the whole context in every layer (transformers use_gqa_in_sdpa).
        if (staticCache && job.Attention == AttentionKernel.Sdpa && a.NumKvHeads < a.NumHeads)
            decodeScores += 2.0 * c * job.Batch * a.QueryWidth * attended;
        // SDPA's math kernel (ActivationModel.SdpaFallsBackToMath): the scores over the context and their softmax, the
        // scaled keys at query width, and K/V repeated to the query heads (enable_gqa; a static cache's are counted above).
        if (decode.SdpaMath)
        {
            int repeated = a.NumKvHeads < a.NumHeads && !staticCache ? 2 : 0;
            decodeScores += 2.0 * c * job.Batch * a.NumHeads * attended + (repeated + 1) * c * job.Batch * (double)a.QueryWidth * attended;
        }
        e.Add(new(LineKind.DecodeTemporaries, "decode temporaries", Phase.Decode,
            ActivationModel.LayerInferenceTransient(a, decode) + ActivationModel.ModelForwardLocals(a, decode) + decodeScores,
            explain ? "one token per sequence through one layer, with the forward's embedding output and rotary tables (+ scores over the context when eager or SDPA's math kernel)" : "", "derived"));
        if (!VisionLedger.Planned(p, job)) return e;
        VisionLedger.AddInference(e, p, job, s, explain);
        return e;
    }

    /// <summary>K and V widths of one layer's token: <c>2 · kv_heads · head_dim</c>, or keys and values apart where their
    /// heads differ (DeepSeek MLA, whose transformers cache holds the expanded per-head keys and values).</summary>
    private static string KvHeads(Architecture.ModelArchitecture a) => a.ValueHeadDim is { } v && v != a.HeadDim
        ? $"kv_heads {a.NumKvHeads} · (k {a.HeadDim} + v {v})"
        : $"2 · kv_heads {a.NumKvHeads} · head_dim {a.HeadDim}";

    /// <summary>The KV line's working: one per-token product when every layer holds the same tokens, else full and
    /// sliding layers apart.</summary>
    private static string KvExplain(Architecture.ModelArchitecture a, string kvFormula, double bytes, long batch, string tokensName, long full, long sliding)
    {
        int slidingLayers = a.SlidingLayerCount;
        if (slidingLayers == 0 || sliding == full) return $"{kvFormula} × b {batch} × {tokensName} {N(full)}";
        return $"{KvHeads(a)} · {B(bytes)} B × b {batch} × (full L {a.NumLayers - slidingLayers} × {tokensName} {N(full)} + " +
            $"sliding L {slidingLayers} × {N(sliding)}, window {N(a.SlidingWindow ?? 0)})";
    }
}
