using Afinado.Planner.Architecture;
using Afinado.Planner.Export;

namespace Afinado.Planner.Parallel;

/// <summary>
/// Builds a <see cref="ParallelJob"/> from a <see cref="DecoderJobSpec"/>: model states in the engines' accounting
/// (16-bit weights and gradients, fp32 master + Adam moments: 2 + 2 + 12 B per trained parameter; fp32: 4 + 4 + 8),
/// and activations per saved tensor of a Llama-style layer, each tagged with its tensor-parallel split
/// (memory.md §1.2 "adapting to modern decoders"). Until the single-GPU ledger is wired in, this is the multi-GPU
/// planner's source of per-rank activations; its terms follow the same autograd rules (a frozen linear saves no input,
/// LoRA A saves its dropped input, flash attention saves q, k, v, output and a fp32 log-sum-exp).
/// </summary>
public static class ParallelJobBuilder
{
    private const string Derived = "memory.md §1.2 (Korthikanti, adapted: RMSNorm, GQA, SwiGLU, no dropout)";
    /// <summary>NF4 with double quantization: 4 + 8/64 + 32/(64·256) bits (QLoRA paper constants, memory.md §1.5).</summary>
    public const double Nf4DoubleQuantBytes = (4 + 8.0 / 64 + 32.0 / (64 * 256)) / 8;
    public const long CudaContextBytes = 300_000_000;

    public static ParallelJob Build(DecoderJobSpec spec)
    {
        spec.Validate();
        var m = spec.Model;
        bool full = spec.Adaptation == AdaptationKind.Full;
        bool fp32 = spec.Precision == RunPrecision.Fp32;
        double c = fp32 ? 4 : 2;
        long p = m.ParameterCount;
        var adapted = full ? [] : m.Tensors.Where(t => t.IsLinearWeight && t.Role != TensorRole.LmHead).ToList();
        long adapters = adapted.Sum(t => (long)spec.LoraRank * (t.Shape[0] + t.Shape[1]));
        long trainable = full ? p : adapters;

        // --- Model states --------------------------------------------------------------------------------------------
        var states = new List<ModelStateEntry>();
        const string bytesSrc = "ZeRO (Rajbhandari et al. 2019) §3.1: 2Ψ + 2Ψ + KΨ; DeepSpeed memory.rst";
        double baseBytes = 0;
        if (spec.Adaptation == AdaptationKind.QLora)
        {
            long quantized = adapted.Sum(t => t.Elements);
            // Only the packed 4-bit data is a parameter tensor (stored in quant_storage) that ZeRO-3/FSDP shard and offload;
            // the QuantState (absmax, double-quant constants) rides along with every module, whole on every rank.
            states.Add(new("frozen linears (NF4 packed 4-bit data)", StateKind.Parameters, quantized, 0.5, "QLoRA (Dettmers et al. 2023): 4 bits/param"));
            states.Add(new("NF4 quantization constants (absmax, double quant; not sharded)", StateKind.Parameters, quantized, Nf4DoubleQuantBytes - 0.5,
                "QLoRA: 8/64 + 32/(64·256) bits/param; bitsandbytes fsdp_qlora.md: only quant_storage data is an FSDP parameter", Shardable: false));
            states.Add(new("frozen embeddings/norms/head (16-bit)", StateKind.Parameters, p - quantized, 2, "bitsandbytes keeps these unquantized"));
            baseBytes = quantized * Nf4DoubleQuantBytes + (p - quantized) * 2.0;
        }
        else
        {
            states.Add(new(full ? $"weights ({(fp32 ? "fp32" : "16-bit")})" : "frozen base weights (16-bit)", StateKind.Parameters, p, fp32 ? 4 : 2, bytesSrc));
            baseBytes = p * (fp32 ? 4.0 : 2.0);
        }
        if (!full)
            states.Add(new($"LoRA adapters (r={spec.LoraRank}, {adapted.Count} linears)", StateKind.Parameters, adapters, c, "PEFT LoraLayer: A [r,in], B [out,r]"));
        states.Add(new($"gradients ({(fp32 ? "fp32" : "16-bit")}, trainable only)", StateKind.Gradients, trainable, c, bytesSrc));
        states.Add(new(fp32 ? "AdamW moments (fp32)" : "fp32 master weights + AdamW moments (K=12)", StateKind.OptimizerStates, trainable, fp32 ? 8 : 12, bytesSrc));

        // --- Activations ---------------------------------------------------------------------------------------------
        var acts = Activations(spec, adapted, c);

        long largestModuleTrainable = full ? ModelGranularity.LargestModule(m)
            : adapted.Count == 0 ? 0 : adapted.Max(t => (long)spec.LoraRank * Math.Max(t.Shape[0], t.Shape[1]));
        long largestUnitTrainable = full ? ModelGranularity.LargestLayerUnit(m)
            : adapted.GroupBy(t => t.Layer).Max(g => g.Sum(t => (long)spec.LoraRank * (t.Shape[0] + t.Shape[1])));
        double TensorBytes(ParameterTensor t) => spec.Adaptation == AdaptationKind.QLora && t.IsLinearWeight && t.Role != TensorRole.LmHead
            ? t.Elements * Nf4DoubleQuantBytes
            : t.Elements * (fp32 ? 4.0 : 2.0);
        double largestModuleBytes = m.Tensors.GroupBy(t => t.Module).Max(g => g.Sum(TensorBytes));
        double largestLayerBytes = m.Tensors.Where(t => t.Layer is not null).GroupBy(t => t.Layer).Max(g => g.Sum(TensorBytes));
        double rootBytes = m.Tensors.Where(t => t.Layer is null).Sum(TensorBytes);
        return new ParallelJob
        {
            LargestModuleGatherBytes = largestModuleBytes,
            LargestWrapUnitGatherBytes = largestLayerBytes,
            RootUnitGatherBytes = rootBytes,
            Parameters = p,
            TrainableParameters = trainable,
            ModelStates = states,
            Activations = acts,
            Overheads = [new("CUDA context", CudaContextBytes, "constant 300 MB (lazy module loading, CUDA ≥ 11.7)", "memory.md §5.2 (pytorch #107667, PR #86509)")],
            AllocatorReserveFraction = spec.AllocatorReserveFraction,
            GatherBytesPerParameter = baseBytes / p,
            GradientBytesPerParameter = c,
            SixteenBitTraining = !fp32,
            LoadBytesPerParameter = baseBytes / p,
            LargestModuleParameters = ModelGranularity.LargestModule(m),
            LargestModuleTrainable = largestModuleTrainable,
            LargestWrapUnitParameters = ModelGranularity.LargestLayerUnit(m),
            LargestWrapUnitTrainable = largestUnitTrainable,
            HiddenSize = m.HiddenSize,
            TensorSizes = m.Tensors.Select(t => t.Elements).ToList(),
            TensorParallelShardableFraction = ModelGranularity.TensorParallelShardableFraction(m),
        };
    }

    private static List<ActivationEntry> Activations(DecoderJobSpec spec, List<ParameterTensor> adapted, double c)
    {
        var m = spec.Model;
        double T = (double)spec.MicroBatch * spec.Seq;
        double h = m.HiddenSize, q = m.QueryWidth, kv = m.KvWidth, f = m.IntermediateSize * (m.IsMoE ? m.ExpertsPerToken : 1);
        bool full = spec.Adaptation == AdaptationKind.Full;
        const TensorParallelSplit Seq = TensorParallelSplit.SequenceRegion, Ten = TensorParallelSplit.TensorRegion;

        // One layer's saved tensors (bytes), split by region.
        double norms = 2 * T * h * 4;                                  // HF RMSNorm saves an fp32 copy of each input
        double linearInputsSeq = full ? 2 * T * h * c : 0;             // q/k/v and gate/up inputs (only when weights train)
        double linearInputsTen = full ? T * (q + f) * c : 0;            // o_proj and down_proj inputs
        double attnCore = T * (q + 2 * kv) * c + T * q * c;             // q, k, v after RoPE + attention output
        double attnScores = spec.FlashAttention
            ? 4.0 * m.NumHeads * T                                      // fp32 log-sum-exp per head and token
            : (double)spec.MicroBatch * m.NumHeads * spec.Seq * (double)spec.Seq * (4 + c) + T * 2 * (q - kv) * c; // fp32 softmax + 16-bit copy; repeat_kv copies
        double mlp = 3 * T * f * c;                                     // gate out (SiLU input), SiLU out, up out
        double loraSeq = 0, loraTen = 0;
        if (!full)
        {
            foreach (var t in adapted.Where(t => t.Layer == 0))
            {
                double inWidth = t.Shape[1];
                double dropped = spec.LoraDropout > 0 ? T * inWidth * (c + 1) : 0; // dropped copy + 1-byte mask
                double aOut = T * spec.LoraRank * c;                             // lora_B's input
                bool seqRegion = t.Role is TensorRole.AttnQ or TensorRole.AttnK or TensorRole.AttnV or TensorRole.AttnQkv
                    or TensorRole.MlpGate or TensorRole.MlpUp or TensorRole.MlpGateUp;
                if (seqRegion) loraSeq += dropped; else loraTen += dropped;
                loraTen += aOut;
            }
        }
        double layerSeq = norms + linearInputsSeq + loraSeq;
        double layerTen = linearInputsTen + attnCore + attnScores + mlp + loraTen;
        int L = m.NumLayers;
        string tokens = $"T = b·s = {spec.MicroBatch}·{spec.Seq}";
        var list = new List<ActivationEntry>();
        const StepPhase Live = StepPhase.Backward, LayerBackward = StepPhase.BackwardEnd;
        if (spec.Checkpointing)
        {
            list.Add(new("checkpointed layer inputs", (long)(L * T * h * c), Seq, $"L {L} × T × h {h} × {c} B; {tokens}", "memory.md §1.2 (full recomputation: 2·sbh per layer)", Live));
            list.Add(new("recomputed layer (sequence region)", (long)layerSeq, Seq, "one layer: norm inputs (fp32) + linear/LoRA inputs", Derived, LayerBackward));
            list.Add(new("recomputed layer (tensor region)", (long)layerTen, Ten, $"one layer: q,k,v,out{(spec.FlashAttention ? ", LSE" : ", s² scores")}, 3·T·f SwiGLU", Derived, LayerBackward));
        }
        else
        {
            list.Add(new("saved activations (sequence region)", (long)(L * layerSeq), Seq, $"L {L} × (norm inputs fp32 + linear/LoRA inputs); {tokens}", Derived, Live));
            list.Add(new("saved activations (tensor region)", (long)(L * layerTen), Ten, $"L {L} × (q,k,v,out{(spec.FlashAttention ? ", LSE" : ", s² scores")}, 3·T·f SwiGLU)", Derived, Live));
        }
        list.Add(new("backward temporaries (one layer's MLP gradients)", (long)(3 * T * f * c), Ten, $"3 × T × f {f} × {c} B", "gradients of gate, up and their product while one layer runs backward", LayerBackward));
        double vocab = m.VocabSize;
        list.Add(new("logits and loss, forward (16-bit logits, fp32 copy, fp32 log-softmax)", (long)(T * vocab * (c + 4 + 4)), Ten,
            $"T × V {vocab} × ({c} + 4 + 4) B", "memory.md §1.2 (logits b·s·V in fp32); transformers ForCausalLMLoss upcast", StepPhase.Forward));
        list.Add(new("logits and loss, backward (saved fp32, its gradient, gradient of the input)", (long)(T * vocab * 12), Ten,
            $"T × V {vocab} × 12 B", "autograd of log_softmax / nll_loss", StepPhase.BackwardStart));
        if (spec.Adaptation == AdaptationKind.QLora)
        {
            long largest = adapted.Max(t => t.Elements);
            list.Add(new("dequantization buffer (largest linear)", (long)(largest * c), Ten, $"{largest} × {c} B", "bitsandbytes dequantize_4bit per matmul", Live));
        }
        return list;
    }
}
