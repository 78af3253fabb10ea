using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Selection;
using static Afinado.Planner.Memory.LedgerBuilder;

namespace Afinado.Planner.Memory;

/// <summary>The training ledger: weights, AMP copies, adapters, gradients, optimizer state, activations, logits, temporaries.</summary>
internal static class TrainingLedger
{
    private const Phase Saved = Phase.Forward | Phase.ForwardLastLayer | Phase.BackwardStart | Phase.BackwardHead;
    /// <summary>Saved activations that have their own entry at the last layer's attention (see "activations while the last
    /// layer's attention runs").</summary>
    private const Phase SavedAfterForward = Phase.Forward | Phase.BackwardStart | Phase.BackwardHead;

    public static List<LedgerEntry> Entries(ModelProfile p, Job job, DeviceKind device, bool explain)
    {
        var a = p.Architecture;
        var sel = p.Selection;
        var e = new List<LedgerEntry>(24);
        bool cpu = device == DeviceKind.Cpu;
        var prec = job.Precision;
        // A text step's backward reaches no vision-tower adapter: those keep no gradient (nor, below, optimizer state); a
        // step with images reaches them all.
        bool images = VisionLedger.Planned(p, job);
        long trainable = images ? sel.TrainableParameters : sel.SteppedParameters;
        AddWeights(e, p, job, explain, ampCopies: true);
        double trainBytes = TrainableBytes(job);
        double c = prec.ComputeBytes();

        // --- Gradients -----------------------------------------------------------------------------------------------
        double gradBytes = trainBytes;
        if (job.OptimizerInBackward)
            // No parameter has a gradient before the head's matmul backward: the loss's backward peaks first. A chunked loss
            // changes nothing here: every chunk's cross-entropy node was created after every chunk's head matmul, so the
            // engine (ready nodes by sequence number, highest first) runs all of the loss's backward before any head's.
            // From there on one gradient at a time, stepped and set to None by its hook (a tied head's waits for the
            // embedding's share).
            e.Add(new(LineKind.GradientsOneTensorAtATime, "gradients: one tensor at a time (optimizer in backward)",
                Phase.BackwardHead | Phase.BackwardEnd,
                p.LargestTrainable * gradBytes, explain ? $"largest trainable tensor {N(p.LargestTrainable)} × {B(gradBytes)} B; freed after its step" : "",
                "torchtune optimizer_in_bwd (memory.md §4.1b; torchtune/training/memory.py register_optim_in_bwd_hooks)"));
        else
        {
            var phases = job.GradAccumulation > 1 ? Phase.Training : Phase.BackwardEnd | Phase.OptimizerStep;
            e.Add(new(LineKind.Gradients, "gradients (trainable only)", phases, trainable * gradBytes,
                explain ? $"{N(trainable)} trainable params × {B(gradBytes)} B" + (job.GradAccumulation > 1 ? $"; kept across {job.GradAccumulation} micro-batches" : "; set to None by zero_grad")
                    + (images ? "" : VisionAdaptersIdle(sel)) : "",
                "memory.md §1.1 (gradients only where requires_grad)"));
            // The head's weight gradient is allocated by the head's matmul backward, after the cross-entropy's backward has
            // released its saved log-softmax and the loss gradient: it is live with the logits' gradient, not with those.
            if (job.GradAccumulation == 1 && p.HeadTrainable)
            {
                e.Add(new(LineKind.GradientHead, "gradient: output head (first computed)", Phase.BackwardHead, p.HeadElements * gradBytes,
                    explain ? $"vocab × hidden = {N(p.HeadElements)} × {B(gradBytes)} B" : "", "autograd order: the head's gradient is the first (MmBackward after LogSoftmaxBackward)"));
                // Under autocast the matmul's weight gradient is 16-bit (the cached cast copy's); ToCopyBackward then makes the fp32 one.
                if (prec.IsAmp())
                    e.Add(new(LineKind.GradientHead16Bit, "gradient: output head, 16-bit before its fp32 cast", Phase.BackwardHead, p.HeadElements * c,
                        explain ? $"vocab × hidden = {N(p.HeadElements)} × {B(c)} B" : "", "autocast weight cast (ToCopyBackward)"));
            }
        }

        // --- Optimizer ------------------------------------------------------------------------------------------------
        AddOptimizer(e, p, job, cpu, trainBytes, explain, visionAdaptersStepped: images);

        // --- Activations -------------------------------------------------------------------------------------------------
        // prepare_model_for_kbit_training: the residual stream and the quantized layers' outputs are fp32.
        double ac = ActivationBytes(job, c);
        var s = ActivationModel.WithCpuKernel(p.Architecture, Settings(p, job, ac) with { Cpu = cpu });
        var total = new SavedBytes();
        double largestLayer = 0, checkpoints = 0;
        int active = 0;
        SavedBytes? lastLayer = null, finalLayer = null;
        foreach (var (L, count) in p.LayerGroups)
        {
            if (!L.Active) continue;
            var layer = ActivationModel.Layer(a, L, s);
            active += count;
            total += layer * count;
            lastLayer ??= layer;
            finalLayer = layer;
            largestLayer = Math.Max(largestLayer, layer.Total);
            checkpoints += count * s.R * a.HiddenSize * s.Tokens;
        }
        string perLayer = explain ? $"summed over {active} layers with saved tensors; T = b·s = {N(s.Tokens)}" : "";
        if (job.Checkpointing == Checkpointing.None)
        {
            AddIf(e, LineKind.ActivationsNorms, "activations: norms", SavedAfterForward, total.Norms, perLayer, "RMSNorm fp32 upcast / LayerNorm input (transformers LlamaRMSNorm)");
            AddIf(e, LineKind.ActivationsAttentionInputs, "activations: linear inputs (attention)", SavedAfterForward, total.AttentionProjections, perLayer, "autograd saves x for dW (memory.md §1.2)");
            AddIf(e, LineKind.ActivationsAttentionCore, "activations: q, k, v, attention output", SavedAfterForward, total.AttentionCore, perLayer,
                s.SdpaMath ? "SDPA math fallback (fp32 or head_dim > 256 with GQA): scaled q, repeated k, v at query width (aten _scaled_dot_product_attention_math)"
                : s.Kernel == AttentionKernel.Sdpa ? "SDPA saves q,k,v,out + fp32 logsumexp (memory.md §1.2)" : "eager: q, repeat_kv K/V (memory.md §1.2)");
            bool sdpaMask = s.Kernel == AttentionKernel.Sdpa && !s.SdpaMath;
            AddIf(e, LineKind.ActivationsAttentionScores, "activations: attention scores (s²)", SavedAfterForward, total.AttentionScores,
                !explain ? "" : s.SdpaMath ? $"b·heads·s² × {B(c)} B softmax output (SDPA math fallback)"
                : sdpaMask ? $"each sliding layer's mask bias, b·s² × {B(s.AttentionC)} B"
                : ActivationModel.EagerScoresFormula(a, s),
                s.SdpaMath ? "aten _scaled_dot_product_attention_math; sdp_utils.cpp select_sdp_backend"
                : sdpaMask ? "PyTorch attention.cpp convert_boolean_attn_mask, kept as attn_bias by _scaled_dot_product_efficient_attention"
                : "memory.md §1.2 (eager O(s²), 5as/h term)");
            AddIf(e, LineKind.ActivationsMlp, "activations: MLP", SavedAfterForward, total.Mlp, perLayer, a.Mlp == MlpKind.Gated ? "SwiGLU: gate, up, act, product (memory.md §1.2 adapted)" : "GeLU MLP: 4h input/output (memory.md §1.2)");
            AddIf(e, LineKind.ActivationsLora, "activations: LoRA (dropout copies, A outputs)", SavedAfterForward, total.Lora, perLayer, "PEFT lora_dropout + lora_A/lora_B inputs (peft #2196, transformers #25572)");
            AddIf(e, LineKind.ActivationsDropoutMasks, "activations: dropout masks", SavedAfterForward, total.DropoutMasks, perLayer, "memory.md §1.2 (1-byte masks)");
            // While the last layer's attention runs (the moment its temporaries, e.g. eager scores, are in flight) its second
            // norm and MLP have saved nothing yet, and neither has the final norm.
            if (finalLayer is { } fin)
                AddIf(e, LineKind.ActivationsWhileLastLayerAttentionRuns, "activations while the last layer's attention runs", Phase.ForwardLastLayer,
                    total.Total - fin.AfterAttention, explain ? $"all layers' saved tensors less the last layer's norm 2 and MLP ({N(fin.AfterAttention)} B), not yet computed" : "",
                    "autograd saves a tensor when the op that needs it runs");
            if (lastLayer is { } last)
                e.Add(new(LineKind.ActivationsLayerInBackward, "activations: layer in backward", Phase.BackwardEnd, last.Total,
                    explain ? "the first layer's saved tensors, freed last" : "", "autograd frees saved tensors as backward passes them"));
        }
        else
        {
            if (job.OffloadActivations)
            {
                AddIf(e, LineKind.ActivationCheckpointsOffloaded, "activation checkpoints, offloaded to host", Phase.None, checkpoints,
                    explain ? $"{active} layers × b·s·h × {B(s.R)} B in CPU memory" : "", "torchtune activation offloading (memory.md §4.1b)");
                AddIf(e, LineKind.ActivationCheckpointInTransit, "activation checkpoint in transit (one layer)", Phase.Training & ~Phase.OptimizerStep, checkpoints / Math.Max(1, active),
                    explain ? "one layer input on the device while it is copied" : "", "torchtune OffloadActivations");
            }
            else
                AddIf(e, LineKind.ActivationCheckpoints, "activation checkpoints (layer inputs)", Saved, checkpoints,
                    explain ? $"{active} layers × b·s·h × {B(s.R)} B" : "", "memory.md §1.2 (full recomputation: 2·sbh per layer)");
            AddIf(e, LineKind.RecomputedLayer, "recomputed layer (one at a time)", Phase.BackwardEnd, largestLayer,
                explain ? "one layer's saved tensors rebuilt during backward" : "", "torch.utils.checkpoint");
        }
        double finalNorm = FinalSaved(p, s);
        AddIf(e, LineKind.ActivationsFinalNormAndHeadInput, "activations: final norm and head input", job.Checkpointing == Checkpointing.None ? SavedAfterForward : Saved, finalNorm, explain ? "b·s·h at norm/head widths" : "", "transformers LlamaModel.norm / lm_head");
        if (s.SdpaMath)
            e.Add(new(LineKind.SdpaMathScoresInFlight, "SDPA math scores in flight (one layer)", Phase.ForwardLastLayer, ActivationModel.EagerForwardTransient(a, s),
                explain ? $"b·a·s² × {B(c)} B: scores before the softmax" : "", "aten _scaled_dot_product_attention_math"));
        // Sliding layers that reach their window under SDPA: transformers' boolean mask [1, 1, s, s] (expanded over the
        // batch), alive while the model's forward runs.
        if (p.Layers.Any(l => l.Active && ActivationModel.SlidingMaskedSdpa(a, l, s)))
            e.Add(new(LineKind.SlidingWindowMask, "sliding-window mask (SDPA)", Phase.ForwardLastLayer, (double)s.Seq * s.Seq,
                explain ? $"s² × 1 B (bool), built once per forward; each sliding layer's SDPA keeps its own {B(s.AttentionC)} B copy (attention scores line)" : "",
                "transformers masking_utils sdpa_mask (_ignore_causal_mask_sdpa: kv_length ≥ sliding_window)"));
        if (s.Kernel == AttentionKernel.Eager)
        {
            if (!cpu)
                e.Add(new(LineKind.CausalMask, "causal mask (eager)", Saved, c * s.Batch * s.Seq * s.Seq,
                    explain ? $"b·s² × {B(c)} B, built once per forward" : "", "transformers 4-D causal mask"));
            e.Add(new(LineKind.EagerScoresInFlight, "eager attention scores in flight (one layer)", Phase.ForwardLastLayer, ActivationModel.EagerForwardTransient(a, s),
                explain ? (cpu ? "b·a·s² × 2 × 4 B: scaled scores and masked copy, held until the module's dispose scope ends" : ActivationModel.EagerForwardTransientFormula(a, s)) : "",
                cpu ? "TorchSharp dispose scopes (torchsharp.md §6.4)" : "transformers eager_attention_forward"));
        }

        // --- Logits and loss -----------------------------------------------------------------------------------------------
        AddLogits(e, a, job, s, ac, cpu, explain);

        // --- Backward temporaries ------------------------------------------------------------------------------------------
        e.Add(new(LineKind.BackwardTemporaries, "backward temporaries (one layer)", Phase.BackwardEnd, ActivationModel.LayerBackwardTransient(a, s),
            explain ? ActivationModel.LayerBackwardTransientFormula(a, s) : "", "derived from the same op list"));
        // The eager experts loop reads each expert's slice of a stack (self.gate_up_proj[expert_idx]): with trainable stacks
        // every slice's gradient passes through SelectBackward, a zero tensor of the whole stack, before AccumulateGrad.
        bool eagerLoop = a.MoeLoop is (MoeTrainingLoop.TopKExperts or MoeTrainingLoop.Phimoe or MoeTrainingLoop.DeepseekV3) && !s.GroupedExperts;
        if (eagerLoop && p.Layers.Any(l => l.ExpertsTrainable || l.ExpertDownTrainable))
        {
            double slice = 2.0 * a.ExpertWidth * a.HiddenSize;
            double sliceGradients = prec.IsAmp() && gradBytes == 4 ? (2 + 4) * slice : gradBytes * slice;
            e.Add(new(LineKind.SelectBackwardStackGradient, "expert stack gradient through SelectBackward (eager experts)", Phase.BackwardEnd,
                a.NumExperts * slice * gradBytes + sliceGradients,
                explain ? $"E × 2·I × h = {N(a.NumExperts * slice)} × {B(gradBytes)} B, plus one expert's slice gradient" : "",
                "derivatives.yaml select_backward (a zero tensor of the input's size); transformers 5 MixtralExperts eager loop"));
        }
        if (!images) return e;
        VisionLedger.AddTraining(e, p, job, s, explain);
        return e;
    }

    /// <summary>Bytes per element of activations: the compute dtype, or fp32 after prepare_model_for_kbit_training.</summary>
    internal static double ActivationBytes(Job job, double c) => KbitPrepared(job) ? 4 : c;

    internal static bool KbitPrepared(Job job) => job.KbitPrep && job.IsTraining && job.ResolvedWeightsDtype.IsQuantized();

    /// <summary>Bytes per trainable element: with adapters every trainable parameter is an adapter, stored (with its
    /// gradient and state) in the adapter dtype; otherwise 4 under fp32/AMP, 2 in pure 16-bit.</summary>
    internal static double TrainableBytes(Job job) =>
        job.Method.UsesAdapters() ? job.ResolvedAdapterDtype.Bytes() : ParamBytes(job.Precision);

    private static double ParamBytes(Precision prec) => prec is Precision.Fp32 or Precision.AmpBf16 or Precision.AmpFp16 ? 4 : 2;

    /// <summary>Trainable and frozen weights, AMP autocast copies (saved for backward; only with <paramref name="ampCopies"/>),
    /// LoRA adapters and the dequantization buffer: the same for every learning rule.</summary>
    internal static void AddWeights(List<LedgerEntry> e, ModelProfile p, Job job, bool explain, bool ampCopies)
    {
        var sel = p.Selection;
        var prec = job.Precision;
        double paramBytes = ParamBytes(prec);
        string paramType = paramBytes == 4 ? "fp32" : prec.ComputeDType().Name();
        var w = job.ResolvedWeightsDtype;
        double c = prec.ComputeBytes();
        double trainBytes = TrainableBytes(job);
        // --- Weights -------------------------------------------------------------------------------------------------
        if (p.TrainableBase > 0)
            e.Add(new(LineKind.WeightsTrainable, prec.IsAmp() ? "weights: trainable (fp32 master)" : "weights: trainable", Phase.Training,
                p.TrainableBase * paramBytes, explain ? $"{N(p.TrainableBase)} params × {B(paramBytes)} B ({paramType})" : "",
                "memory.md §1.1, §1.5 (bytes/param by regime)"));
        double frozenBytesPerOther = w.IsQuantized() ? 2 : w.Bytes();
        // A GPTQ/AWQ/bitsandbytes checkpoint's frozen linears in the tensors their library stores (biases included); whatever
        // it leaves unconverted joins the 16-bit rest.
        var stored = job.StoredFormat is not null ? p.FrozenCheckpointWeights : null;
        if (w.IsQuantized())
        {
            if (stored is not null)
                e.Add(new(LineKind.WeightsFrozenQuantized, $"weights: frozen linears ({job.StoredFormat!.Description})", Phase.Training, stored.Bytes,
                    explain ? stored.Breakdown : "", job.StoredFormat.Source));
            else
                e.Add(new(LineKind.WeightsFrozenQuantized, $"weights: frozen linears ({w.Name()})", Phase.Training, p.FrozenQuantizable * w.Bytes(),
                    explain ? $"{N(p.FrozenQuantizable)} params × {w.Bits():0.###} bits / 8" : "", "memory.md §1.5 (QLoRA: NF4 4.5 bits, double quant 4.127)"));
            long other = stored is null ? p.FrozenOther : p.FrozenQuantizable + p.FrozenOther - stored.Elements;
            if (other > 0)
            {
                double otherBytes = job.KbitPrep ? 4 : 2;
                // transformers 5's stacked experts are parameters, not nn.Linear modules: bitsandbytes leaves them 16-bit.
                string what = (stored is null && p.Architecture.RoutedExpertsAreParameters ? "embeddings/norms/head/stacked experts" : "embeddings/norms/head")
                    + (p.VisionFrozen == 0 ? "" : stored is null ? "/vision tower's other tensors" : "/vision tower");
                e.Add(new(LineKind.WeightsSkippedByQuantizer, job.KbitPrep ? $"weights: frozen {what} (fp32, prepare_model_for_kbit_training)" : $"weights: frozen {what} (16-bit)",
                    Phase.Training, other * otherBytes,
                    explain ? $"{N(other)} params × {B(otherBytes)} B (not quantized, as {(stored is null ? "bitsandbytes" : "the checkpoint")} skips them)" : "",
                    job.KbitPrep ? "peft prepare_model_for_kbit_training (casts every non-quantized parameter to fp32)"
                    : stored is not null ? job.StoredFormat!.SkipSource
                    : p.Architecture.RoutedExpertsAreParameters ? "bitsandbytes replaces nn.Linear modules only (bitsandbytes issue 1849: transformers 5's fused experts stay full precision); llm_int8_skip_modules"
                    : "bitsandbytes llm_int8_skip_modules; memory.md §1.5"));
            }
        }
        else if (p.FrozenQuantizable + p.FrozenOther > 0)
            e.Add(new(LineKind.WeightsFrozen, "weights: frozen", Phase.Training, (p.FrozenQuantizable + p.FrozenOther) * frozenBytesPerOther,
                explain ? $"{N(p.FrozenQuantizable + p.FrozenOther)} params × {B(frozenBytesPerOther)} B ({w.Name()})" : "", "memory.md §1.5"));
        if (prec.IsAmp() && ampCopies)
        {
            double fp32Linear = p.TrainableLinear + (w == DType.Fp32 ? p.FrozenLinearInGraph : 0);
            const string ampSource = "memory.md §1.5 (HF anatomy: 18 B/param = 4 + 2 weights + 4 grads + 8 AdamW)";
            if (job.Checkpointing == Checkpointing.None)
            {
                if (fp32Linear > 0)
                    e.Add(new(LineKind.AmpWeightCopies, "AMP 16-bit weight copies (autocast cache)", Saved, fp32Linear * 2,
                        explain ? $"{N(fp32Linear)} fp32 linear params × 2 B, cast once per forward, kept for backward" : "", ampSource));
            }
            else
            {
                // Checkpointed layers' matmuls do not keep their 16-bit weights for backward, so those copies live only in
                // autocast's cache, which torch.autocast clears when the forward's context exits (backward runs outside
                // it); the recomputation casts one layer's weights again. The head is not checkpointed: autograd keeps its copy.
                double head = p.HeadTrainable || (w == DType.Fp32 && p.HeadInputRequiresGrad) ? p.HeadElements : 0;
                double layers = Math.Max(0, fp32Linear - head);
                int activeLayers = p.LayerGroups.Where(g => g.Layer.Active).Sum(g => g.Count);
                if (layers > 0)
                {
                    e.Add(new(LineKind.AmpWeightCopiesOfCheckpointedLayers, "AMP 16-bit weight copies of checkpointed layers (autocast cache)", Phase.Forward | Phase.ForwardLastLayer, layers * 2,
                        explain ? $"{N(layers)} fp32 linear params × 2 B, cached until the forward's autocast context exits" : "",
                        "torch.autocast __exit__ (clear_autocast_cache); " + ampSource));
                    e.Add(new(LineKind.AmpWeightCopiesOfRecomputedLayer, "AMP 16-bit weight copies of the recomputed layer", Phase.BackwardEnd, layers * 2 / Math.Max(1, activeLayers),
                        explain ? "one layer's linears cast again by the recomputation" : "", "torch.utils.checkpoint (recompute under the saved autocast state)"));
                }
                if (head > 0)
                    e.Add(new(LineKind.AmpWeightCopyOfHead, "AMP 16-bit weight copy of the head (saved for backward)", Saved, head * 2,
                        explain ? $"{N(head)} params × 2 B" : "", ampSource));
            }
        }
        if (sel.AdapterParameters > 0)
            e.Add(new(LineKind.LoraAdapters, $"LoRA adapters (r={sel.Lora!.Rank}, {sel.AdapterCount / 2} linears)", Phase.Training,
                sel.AdapterParameters * trainBytes, explain ? $"Σ r·(in+out) = {N(sel.AdapterParameters)} params × {B(trainBytes)} B ({job.ResolvedAdapterDtype.Name()})" : "", "PEFT LoraLayer (A [r,in], B [out,r])"));
        // PEFT ParamWrapper: get_delta_weight builds ΔW = einsum(B, A) as large as the stack, held while the experts run,
        // and backward produces the merged weight's gradient of the same size before reducing it to A and B.
        long stack = p.LargestAdaptedExpertStack;
        if (stack > 0)
            e.Add(new(LineKind.ExpertDeltaWeight, "LoRA delta of one expert stack (target_parameters)", Phase.Forward | Phase.ForwardLastLayer | Phase.BackwardEnd,
                stack * c, explain ? $"largest adapted stack {N(stack)} × {B(c)} B: ΔW in forward, the gradient of W + ΔW in backward" : "",
                "peft/tuners/lora/layer.py ParamWrapper.get_delta_weight and _activate_lora (torch.nn.utils.parametrize)"));
        long largest = stored?.LargestLinear ?? p.LargestQuantizableLinear;
        if (w.IsQuantized() && largest > 0)
            e.Add(new(LineKind.DequantizationBuffer, "dequantization buffer", Phase.Training & ~Phase.OptimizerStep, largest * c,
                explain ? $"largest quantized linear {N(largest)} × {B(c)} B, dequantized per matmul" : "",
                stored is not null ? job.StoredFormat!.KernelSource : "bitsandbytes MatMul4Bit (dequantize_4bit per call); memory.md §1.5"));
    }

    /// <summary>Bytes per element of the residual stream: the embedding output's dtype (fp32 for a trainable table under
    /// AMP, the loaded dtype for a frozen one), fp32 in fp32 runs and after kbit preparation, at least the compute width.</summary>
    internal static double ResidualBytes(ModelProfile p, Job job, double c)
    {
        if (!job.IsTraining) return c;
        var w = job.ResolvedWeightsDtype;
        double paramBytes = job.Precision is Precision.Fp32 or Precision.AmpBf16 or Precision.AmpFp16 ? 4 : 2;
        double r = p.EmbeddingTrainable ? paramBytes : (w.IsQuantized() ? 2 : w.Bytes());
        if (job.Precision == Precision.Fp32 || ActivationBytes(job, c) == 4) r = 4;
        return Math.Max(r, c);
    }

    internal static ActivationSettings Settings(ModelProfile p, Job job, double c)
    {
        double r = ResidualBytes(p, job, c);
        var lora = p.Selection.Lora;
        // The LoRA branch computes in the adapter dtype unless autocast runs it (AMP); a dtype unlike the input's means
        // PEFT casts the input, and lora_A keeps that private copy (peft LoraLayer._cast_input_dtype).
        double adapter = job.Method.UsesAdapters() && job.IsTraining ? job.ResolvedAdapterDtype.Bytes() : c;
        double loraC = job.Precision.IsAmp() ? c : adapter;
        return new ActivationSettings(job.Batch, job.Seq, c, r, job.Attention, job.Compile, job.Dropout,
            p.Architecture.FusedLayerNorm && job.Dropout > 0, lora?.Rank ?? 0, lora?.Dropout ?? 0)
        {
            LoraC = loraC,
            LoraPrivateInput = loraC != c,
            // After prepare_model_for_kbit_training the HF Trainer's bf16 autocast (bf16=True) still runs SDPA in 16 bits
            // on the fp32 q/k/v, so it is the fused kernel, as flash_attention_2's own cast is.
            SdpaMathOnGpu = ActivationModel.SdpaFallsBackToMath(p.Architecture, KbitPrepared(job) ? job.Precision.ComputeBytes() : c,
                job.PreAmpereGpu, job.Precision.ComputeDType() == DType.Bf16, ActivationModel.KvRepeatedForMask(job)),
            SoftmaxUpcastCopy = job.Precision.ComputeDType() == DType.Bf16,
            AttentionC = job.Attention == AttentionKernel.Flash || KbitPrepared(job) ? Math.Min(c, job.Precision.ComputeBytes()) : c,
            GroupedExperts = job.ResolvedExperts == ExpertsBackend.GroupedMm,
            Autocast = job.Precision.IsAmp(),
            MaskEveryLayer = VisionLedger.ImageMasks(p.Architecture, job),
        };
    }

    internal static double FinalSaved(ModelProfile p, in ActivationSettings s)
    {
        double h = p.Architecture.HiddenSize, T = s.Tokens, bytes = 0;
        if (p.HeadInputRequiresGrad || p.FinalNormTrainable)
            bytes += (s.Compile ? s.R : (p.HeadInputRequiresGrad ? 4 : 0) + (p.FinalNormTrainable ? s.R : 0)) * T * h;
        if (p.HeadTrainable) bytes += s.C * T * h;
        return bytes;
    }

    internal static void AddLogits(List<LedgerEntry> e, ModelArchitecture a, Job job, in ActivationSettings s, double c, bool cpu, bool explain)
    {
        double tv = s.Tokens * a.VocabSize;
        // Logits still referenced while backward runs: on the CPU the step's dispose scope holds them; --keep-output says
        // the loop holds the model output (fp32 under the legacy loss, which upcasts inside the model).
        double held = Math.Max(cpu ? c : 0, job.KeepOutput ? (job.LegacyLoss ? 4 : c) : 0);
        string heldText = held == 0 ? "" : $" + logits {B(held)} held " + (job.KeepOutput ? "by the loop's output" : "by the step's dispose scope");
        double forward, backward;
        string how;
        if (job.LossChunks > 1)
        {
            double k = job.LossChunks;
            // torchtune CEWithChunkedOutputLoss: 16-bit logits chunks; fp32 upcast one chunk at a time. Compiled, the
            // per-chunk CE keeps only its 16-bit input; eager, each chunk's fp32 log-softmax stays saved.
            // Compiled CE writes the 16-bit gradient of each chunk directly (no fp32 chunk in backward).
            forward = c * tv + (job.Compile ? 0 : 4 * tv + 4 * tv / k);
            backward = (job.Compile ? c * tv + c * tv / k : 4 * tv + 8 * tv / k + c * tv / k) + (job.KeepOutput ? held * tv : 0);
            how = $"chunked CE ({job.LossChunks} chunks{(job.Compile ? ", compiled" : "")}): {B(c)}·T·V + fp32 per chunk" + (job.KeepOutput ? heldText : "");
        }
        else if (job.LegacyLoss)
        {
            // transformers < 4.46 LlamaForCausalLM: logits.float() replaces the 16-bit logits in the output, then
            // logits[..., :-1, :].contiguous() copies the shifted slice, whose log_softmax is saved in fp32.
            forward = 12 * tv;
            backward = (12 + held) * tv;
            how = "forward: fp32 logits 4 + shifted copy 4 + log_softmax 4 B per T·V (transformers < 4.46); backward: saved 4 + grad 4 + grad input 4" + heldText;
        }
        else
        {
            // transformers ForCausalLMLoss: logits (c) → .float() copy → log_softmax saved in fp32. Gemma 2's final soft-cap
            // (logits / cap, tanh, · cap) keeps tanh's output until its backward (Afinado's model disposes the head's raw
            // output and the quotient when its forward returns).
            double cap = a.FinalLogitSoftcap is null ? 0 : c;
            forward = (c + (c < 4 ? 4 : 0) + 4 + cap) * tv;
            backward = (12 + held + cap) * tv;
            how = $"forward: logits {B(c)} + fp32 copy {(c < 4 ? 4 : 0)} + log_softmax 4 B per T·V" + (cap > 0 ? $" + soft-cap {B(cap)}" : "") +
                $"; backward: saved 4 + grad 4 + grad input 4" + (cap > 0 ? $" + soft-cap {B(cap)}" : "") + heldText;
        }
        e.Add(new(LineKind.LossForward, "logits and cross-entropy (forward)", Phase.Forward, forward,
            explain ? $"{how}; T·V = {N(tv)}" : "", job.LegacyLoss ? "transformers < 4.46 modeling_llama.py (logits.float(), shift_logits .contiguous())" : "memory.md §1.2 (b·s·V in fp32), §3 GaLore #57"));
        e.Add(new(LineKind.LossBackward, "logits and cross-entropy (backward)", Phase.BackwardStart, backward,
            explain ? $"{how}; T·V = {N(tv)}" : "", "autograd of log_softmax / nll_loss" + (job.KeepOutput ? "; the loop's output keeps the logits" : "")));
        // Once LogSoftmaxBackward has run, its saved output and incoming gradient are freed; what reaches the head is the
        // logits' gradient in the logits' dtype (ToCopyBackward casts the fp32 one back under 16-bit compute).
        double head = (c + held) * tv;
        e.Add(new(LineKind.LogitsGradient, "logits gradient (head backward)", Phase.BackwardHead, head,
            explain ? $"grad of logits {B(c)} B per T·V" + heldText + $"; T·V = {N(tv)}" : "",
            "autograd releases saved tensors after each node runs (retain_graph=False)"));
    }

    /// <summary>What a formula over the stepped parameters adds when all-linear put adapters on a vision tower.</summary>
    private static string VisionAdaptersIdle(TrainableSelection sel) => sel.VisionAdapterParameters == 0 ? ""
        : $"; the vision tower's {N(sel.VisionAdapterParameters)} adapter params get none (a text step runs nothing through the tower)";

    /// <param name="visionAdaptersStepped">Whether the step gives the vision tower's LoRA adapters a gradient: backprop on text
    /// does not (no state for them), ES steps every parameter that requires grad.</param>
    internal static void AddOptimizer(List<LedgerEntry> e, ModelProfile p, Job job, bool cpu, double stateBytes, bool explain,
        bool visionAdaptersStepped)
    {
        var v = visionAdaptersStepped ? p.VisionAdapters : default;
        long n = visionAdaptersStepped ? p.Selection.TrainableParameters : p.Selection.SteppedParameters;
        long largest = Math.Max(p.LargestTrainable, v.Largest), smallTrainable = p.SmallTrainable + v.Small;
        long blocks = p.EightBitStateBlocks + v.Blocks, factored = p.FactoredElements + v.Factored;
        string lazy = cpu
            ? "created at the first step by Afinado's AdamW (TorchSharp's built-in one allocates it in the constructor, torchsharp.md §6.3); steady state is the same"
            : "created lazily at the first step (memory.md §5.2); live from iteration 2 on";
        string src = "memory.md §1.1, §1.5";
        switch (job.Optimizer)
        {
            case OptimizerKind.Sgd:
                break;
            case OptimizerKind.SgdMomentum:
                e.Add(new(LineKind.OptimizerState, "optimizer: momentum", Phase.Training, n * stateBytes,
                    explain ? $"{N(n)} × {B(stateBytes)} B; {lazy}" : "", src));
                break;
            case OptimizerKind.AdamW:
                e.Add(new(LineKind.OptimizerState, "optimizer: AdamW exp_avg + exp_avg_sq", Phase.Training, 2.0 * n * stateBytes,
                    explain ? $"2 × {N(n)} × {B(stateBytes)} B; {lazy}" + (visionAdaptersStepped ? "" : VisionAdaptersIdle(p.Selection)) : "", src));
                break;
            case OptimizerKind.AdamW8bit or OptimizerKind.PagedAdamW8bit:
                {
                    long small = smallTrainable, big = n - small;
                    double bytes = big * 2.0 + blocks * 2 * 4.0 + small * 8.0;
                    bool paged = job.Optimizer == OptimizerKind.PagedAdamW8bit;
                    e.Add(new(paged ? LineKind.OptimizerStatePaged : LineKind.OptimizerState, paged ? "optimizer: paged 8-bit AdamW (unified memory, evictable)" : "optimizer: 8-bit AdamW states",
                        paged ? Phase.None : Phase.Training, bytes,
                        explain ? $"{N(big)} × 2 × 1 B + {N(blocks)} blocks of 256 × 2 × 4 B absmax + {N(small)} small-tensor params × 8 B (kept 32-bit)" + (paged ? "; cudaMallocManaged, outside PyTorch's allocator" : "") : "",
                        "memory.md §1.5 (bitsandbytes 8-bit states; paged optimizers); bitsandbytes Optimizer8bit.init_state (blocks of 256 since 0.44, PR #1365)"));
                    break;
                }
            case OptimizerKind.Adafactor:
                e.Add(new(LineKind.OptimizerState, "optimizer: Adafactor factored second moment", Phase.Training, factored * stateBytes,
                    explain ? $"rows + columns per matrix, all elements of vectors = {N(factored)} × {B(stateBytes)} B (no first moment)" : "",
                    "transformers Adafactor (beta1=None)"));
                break;
        }
        double temp = job.Optimizer switch
        {
            // foreach AdamW on CUDA: one param-sized temporary across the group (HF blog: intermediates ≈ N·P).
            OptimizerKind.AdamW when job.FusedOptimizer => 0,
            OptimizerKind.AdamW when !cpu && !job.OptimizerInBackward => n * stateBytes,
            OptimizerKind.AdamW => largest * stateBytes,
            OptimizerKind.Adafactor => largest * 4.0 * (stateBytes < 4 ? 3 : 1),
            _ => 0,
        };
        if (temp > 0)
            e.Add(new(LineKind.OptimizerTemporaries, "optimizer temporaries", !job.OptimizerInBackward ? Phase.OptimizerStep : InBackwardStepPhases(p), temp,
                explain ? (job.Optimizer == OptimizerKind.AdamW && !cpu && !job.OptimizerInBackward
                    ? $"foreach AdamW: sqrt(exp_avg_sq) for all {N(n)} params × {B(stateBytes)} B"
                    : $"per-tensor step: largest trainable tensor {N(largest)}") : "",
                "memory.md §1.5 (HF blog: optimizer intermediates ≈ N·P); torch.optim._multi_tensor_adamw"));
    }

    /// <summary>Where an optimizer-in-backward step runs: through the layers' backward and, when the head has a weight of its
    /// own to train, right after the head's matmul backward (a tied head's gradient is complete only at the embedding).</summary>
    private static Phase InBackwardStepPhases(ModelProfile p) =>
        p.HeadTrainable && !p.Architecture.TiedEmbeddings ? Phase.BackwardHead | Phase.BackwardEnd : Phase.BackwardEnd;

    internal static void AddIf(List<LedgerEntry> e, LineKind kind, string name, Phase phases, double bytes, string formula, string source)
    {
        if (bytes > 0) e.Add(new(kind, name, phases, bytes, formula, source));
    }
}
