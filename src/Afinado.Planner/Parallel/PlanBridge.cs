using Afinado.Planner.Architecture;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Parallel;

/// <summary>
/// Connects the single-GPU plan (issue 2) to the multi-GPU ledger. From the plan it takes what does not depend on the
/// engine: the saved activations, logits, temporaries (with their moments) and the CUDA context; model states are
/// re-counted the way sharded engines hold them (16-bit compute weights and gradients, fp32 master in the optimizer's
/// class; quantized bases at their storage bits), with the optimizer's bytes per parameter taken from
/// the plan (AdamW, 8-bit, SGD, Adafactor).
/// </summary>
public static class PlanBridge
{
    public static ParallelJob FromPlan(Plan plan)
    {
        var job = plan.Job;
        if (!job.IsTraining)
            throw new InputError(JobParameters.Task, "multi-GPU layouts are planned for training", $"Use {JobParameters.Task} train with {LayoutParameters.Gpus}/{LayoutParameters.Zero}/{LayoutParameters.Fsdp}, or plan inference on one GPU: when it does not fit, the plan says how many GPUs of that kind its weights and KV cache need at least.");
        var arch = plan.Architecture;
        var sel = plan.Selection;
        var ledger = plan.Ledger;
        bool fp32 = job.Precision == Precision.Fp32;
        double c = fp32 ? 4 : 2;
        var w = job.ResolvedWeightsDtype;
        long p = arch.ParameterCount, trainable = sel.TrainableParameters, trainableBase = sel.TrainableBaseParameters;
        var trainableNames = sel.TrainableBaseTensors.Select(t => t.Name).ToHashSet();
        const string bytesSrc = "ZeRO (Rajbhandari et al. 2019) §3.1: 2Ψ + 2Ψ + KΨ; DeepSpeed memory.rst";

        // Quantization replaces nn.Linear modules only (transformers 5's stacked experts stay 16-bit).
        var facts = ArchitectureFacts.Of(arch);
        var linearModules = facts.IsLinearModule;
        // A GPTQ/AWQ/bitsandbytes checkpoint is counted in the exact tensors its library stores.
        var stored = job.StoredFormat is { } format ? new StoredCheckpointLinears(arch, format, trainableNames, c) : null;
        bool Quantized(ParameterTensor t) => stored?.Stores(t)
            ?? (w.IsQuantized() && !trainableNames.Contains(t.Name) && linearModules[facts.IndexByName[t.Name]] && t.Role != TensorRole.LmHead);
        // bitsandbytes keeps its block constants outside the parameter (see QuantLibrary), so only the codes are
        // sharded, gathered, offloaded and loaded to the CPU; torchao's NF4Tensor carries them inside the parameter.
        bool constantsApart = job.QuantLibrary == QuantLibrary.BitsAndBytes && w.CodeBits() < w.Bits();
        double shardedBytesPerQuantized = constantsApart ? w.CodeBits() / 8 : w.Bytes();
        double TensorBytes(ParameterTensor t) => stored?.GatheredBytes(t) ?? (Quantized(t) ? t.Elements * shardedBytesPerQuantized : t.Elements * c);
        double LoadedBytes(ParameterTensor t) => stored?.LoadedBytes(t) ?? TensorBytes(t);

        var states = new List<ModelStateEntry>();
        long quantized = arch.Tensors.Where(Quantized).Sum(t => t.Elements);
        long frozen = p - trainableBase;
        // The routed experts' part of each state, which expert parallelism splits (adapters count as replicated: whether an
        // expert-parallel engine splits LoRA factors on expert modules is not documented, so the larger figure is kept).
        long quantizedExperts = arch.Tensors.Where(t => Quantized(t) && t.IsExpert).Sum(t => t.Elements);
        long trainableExperts = sel.TrainableBaseTensors.Where(t => t.IsExpert).Sum(t => t.Elements);
        long frozenFloatExperts = arch.Tensors.Where(t => t.IsExpert).Sum(t => t.Elements) - quantizedExperts - trainableExperts;
        if (stored is not null && quantized > 0)
            states.AddRange(StoredStates(stored, quantizedExperts));
        else if (quantized > 0 && constantsApart)
        {
            states.Add(new(LineKind.WeightsFrozenQuantizedCodes, $"frozen linears ({w.Name()} 4-bit codes)", StateKind.Parameters, quantized, shardedBytesPerQuantized,
                "bitsandbytes Params4bit: two 4-bit codes per byte (packed into bnb_4bit_quant_storage)", ExpertElements: quantizedExperts));
            states.Add(new(LineKind.QuantizationConstants, $"bitsandbytes QuantState ({w.Name()} block constants), whole on every GPU", StateKind.Parameters, quantized, w.Bytes() - shardedBytesPerQuantized,
                "memory.md §1.5 constants (fp32 absmax per 64, or 8-bit absmax + fp32 per 256 blocks); bitsandbytes nn/modules.py keeps QuantState on the " +
                "module, not as a parameter (fix_4bit_weight_quant_state_from_module: \"the quant state got lost ... for fsdp\"), and transformers PR #29587 " +
                "quantizes on the GPU then moves only value.data to CPU/meta, so FSDP/ZeRO-3 neither shard nor offload it", Shardable: false, ExpertElements: quantizedExperts));
        }
        else if (quantized > 0)
            states.Add(new(LineKind.WeightsFrozenQuantized, $"frozen linears ({w.Name()}, incl. block constants)", StateKind.Parameters, quantized, w.Bytes(),
                "memory.md §1.5 (NF4 4.5 bits, 4.127 with double quantization); torchao NF4Tensor shards its scalers with the codes", ExpertElements: quantizedExperts));
        if (frozen - quantized > 0)
            states.Add(new(LineKind.WeightsFrozen, $"frozen weights ({(fp32 ? "fp32" : "16-bit")})", StateKind.Parameters, frozen - quantized, c, "engines hold frozen weights in the compute dtype",
                FrozenFloatWeights: true, ExpertElements: frozenFloatExperts));
        if (trainable > 0)
        {
            bool adaptersOnly = sel.AdapterParameters > 0 && trainableBase == 0;
            states.Add(new(adaptersOnly ? LineKind.LoraAdapters : LineKind.WeightsTrainable, adaptersOnly ? "LoRA adapters" : $"trainable weights ({(fp32 ? "fp32" : "16-bit")})",
                StateKind.Parameters, trainable, c, bytesSrc, ExpertElements: trainableExperts));
            states.Add(new(LineKind.Gradients, $"gradients ({(fp32 ? "fp32" : "16-bit")}, trainable only)", StateKind.Gradients, trainable, c, bytesSrc, ExpertElements: trainableExperts));
            if (job.Precision.IsAmp())
                states.Add(new(LineKind.MasterWeights, "fp32 master weights", StateKind.OptimizerStates, trainable, 4, bytesSrc, ExpertElements: trainableExperts));
            double optimizer = ledger.Tensors.Where(e => e.Category == Category.OptimizerState).Sum(e => e.Bytes);
            if (optimizer > 0)
                states.Add(new(LineKind.OptimizerState, $"optimizer states ({job.Optimizer.Name()})", StateKind.OptimizerStates, trainable, optimizer / trainable, "single-GPU ledger: " + string.Join("; ", ledger.Tensors.Where(e => e.Category == Category.OptimizerState).Select(e => e.Name)), ExpertElements: trainableExperts));
            double temporaries = ledger.Tensors.Where(e => e.Kind == LineKind.OptimizerTemporaries).Sum(e => e.Bytes);
            if (temporaries > 0)
                states.Add(new(LineKind.OptimizerTemporaries, "optimizer temporaries (per local shard)", StateKind.OptimizerStates, trainable, temporaries / trainable,
                    "single-GPU ledger: foreach AdamW temporaries", Phase: Phase.OptimizerStep, ExpertElements: trainableExperts));
        }

        var activations = new List<ActivationEntry>();
        foreach (var e in ledger.Tensors)
        {
            // Optimizer temporaries are re-counted per local shard with the model states above.
            if (e.Category is not (Category.Activations or Category.Logits or Category.Temporary) || e.Kind == LineKind.OptimizerTemporaries) continue;
            // The parallel ledger sums at the step's four moments and, for image inputs, the vision tower's; lines live only
            // at finer ones (the last layer's forward, the head's backward, perturbed forwards) have no moment there.
            var moments = e.Phases & (Phase.Step | Phase.VisionTower);
            if (moments == Phase.None) continue;
            // The first layer to be recomputed in backward runs while every layer's checkpoint is still held, so the
            // checkpoints are live at the backward moment that holds the recomputed layer too (the single-GPU ledger
            // lists them at forward and backward start only).
            if (e.Kind == LineKind.ActivationCheckpoints) moments |= Phase.BackwardEnd;
            activations.Add(new(e.Kind, e.Name, e.RoundedBytes, SplitOf(e.Kind), e.Formula, e.Source, moments));
        }
        // The CUDA context and the cuBLAS workspaces do not scale with the layout (fragmentation is re-derived per GPU).
        var overheads = ledger.Runtime.Where(e => e.Kind is LineKind.CudaContext or LineKind.CublasWorkspaces)
            .Select(e => e with { Phases = Phase.Step, Bytes = e.RoundedBytes }).ToList();

        var adapterByLayer = sel.Adapters.GroupBy(a => a.Layer).Select(g => g.Sum(a => a.Elements)).DefaultIfEmpty(0).Max();
        long largestTrainableModule = Math.Max(
            sel.TrainableBaseTensors.GroupBy(t => t.Module).Select(g => g.Sum(t => t.Elements)).DefaultIfEmpty(0).Max(),
            sel.Adapters.Select(a => a.Elements).DefaultIfEmpty(0).Max());
        long largestTrainableLayer = Math.Max(
            sel.TrainableBaseTensors.GroupBy(t => t.Layer ?? -1).Select(g => g.Sum(t => t.Elements)).DefaultIfEmpty(0).Max(), adapterByLayer);
        double baseBytes = arch.Tensors.Sum(TensorBytes), loadedBytes = arch.Tensors.Sum(LoadedBytes);
        return new ParallelJob
        {
            Parameters = p,
            TrainableParameters = trainable,
            ModelStates = states,
            Activations = activations,
            Overheads = overheads,
            // The per-GPU step (sharded states, gathered units, buckets) is not replayed: neither the share nor the bytes
            // of the single-GPU replay's fragmentation carry over (tried both against the published multi-GPU rows: each
            // moved some rows by 10–35 points), so the assumed reserve stays.
            AllocatorReserveFraction = LedgerBuilder.AllocatorReserveFraction,
            ReplayedFragmentationBytes = ledger.Replay is not null ? ledger.FragmentationBytes : null,
            GatherBytesPerParameter = baseBytes / p,
            GradientBytesPerParameter = c,
            SixteenBitTraining = !fp32,
            LoadBytesPerParameter = loadedBytes / p,
            LargestModuleParameters = ModelGranularity.LargestModule(arch),
            LargestModuleGatherBytes = arch.Tensors.GroupBy(t => t.Module).Max(g => g.Sum(TensorBytes)),
            LargestModuleTrainable = largestTrainableModule,
            LargestWrapUnitParameters = ModelGranularity.LargestLayerUnit(arch),
            LargestWrapUnitGatherBytes = arch.Tensors.Where(t => t.Layer is not null).GroupBy(t => t.Layer).Select(g => g.Sum(TensorBytes)).DefaultIfEmpty(0).Max(),
            RootUnitGatherBytes = arch.Tensors.Where(t => t.Layer is null).Sum(TensorBytes),
            EmbeddingGatherBytes = arch.Tensors.Where(t => t.Layer is null && t.Role == TensorRole.TokenEmbedding).Sum(TensorBytes),
            HeadGatherBytes = arch.Tensors.Where(t => t.Role == TensorRole.LmHead).Sum(TensorBytes),
            EmbeddingTrainable = sel.TrainableBaseTensors.Where(t => t.Layer is null && t.Role == TensorRole.TokenEmbedding).Sum(t => t.Elements),
            HeadTrainable = sel.TrainableBaseTensors.Where(t => t.Role == TensorRole.LmHead).Sum(t => t.Elements),
            FsdpUnitBytes = FsdpUnits(arch, sel, TensorBytes, Selection.TrainingMethods.UsesAdapters(job.Method) ? job.ResolvedAdapterDtype.Bytes() : c),
            AdapterUnitsNested = Selection.TrainingMethods.UsesAdapters(job.Method) && sel.Adapters.Count > 0,
            LargestWrapUnitTrainable = largestTrainableLayer,
            LargestLayerTrainable = Math.Max(adapterByLayer, sel.TrainableBaseTensors.Where(t => t.Layer is not null).GroupBy(t => t.Layer)
                .Select(g => g.Sum(t => t.Elements)).DefaultIfEmpty(0).Max()),
            HiddenSize = arch.HiddenSize,
            // GPTQ/AWQ buffers are not parameters, so ZeRO-3's persistence threshold never sees them.
            TensorSizes = arch.Tensors.Where(t => stored is not { RegistersBuffers: true } || !stored.Stores(t)).Select(t => t.Elements).ToList(),
            TensorParallelShardableFraction = ModelGranularity.TensorParallelShardableFraction(arch),
            VisionTowerRuns = job.Images > 0,
            ExpertDispatchBytes = arch.IsMoE ? (long)Math.Ceiling((double)job.Batch * job.Seq * arch.ExpertsPerToken * arch.HiddenSize * c) : 0,
        };
    }

    /// <summary>The state lines of a pre-quantized checkpoint's frozen linears, from its stored tensors.</summary>
    private static IEnumerable<ModelStateEntry> StoredStates(StoredCheckpointLinears stored, long experts)
    {
        var f = stored.Format;
        double perElement(long bytes) => (double)bytes / stored.Elements;
        if (stored.RegistersBuffers)
        {
            yield return new(LineKind.WeightsFrozenQuantized, $"frozen linears ({f.Description}: stored buffers), whole on every GPU", StateKind.Parameters,
                stored.Elements, perElement(stored.Bytes), f.Source + "; AutoGPTQ QuantLinear / AutoAWQ WQLinear_GEMM register them with register_buffer, " +
                "and ZeRO-3 / FSDP partition and gather parameters only", Shardable: false, ExpertElements: experts);
            yield break;
        }
        yield return new(LineKind.WeightsFrozenQuantizedCodes, $"frozen linears ({f.Description}: codes and biases)", StateKind.Parameters,
            stored.Elements, perElement(stored.ParameterBytes), f.Source, ExpertElements: experts);
        if (stored.Bytes > stored.ParameterBytes)
            yield return new(LineKind.QuantizationConstants, $"bitsandbytes quantization constants ({f.Description}), whole on every GPU", StateKind.Parameters,
                stored.Elements, perElement(stored.Bytes - stored.ParameterBytes), f.Source + "; bitsandbytes keeps QuantState / SCB on the module, " +
                "not as a parameter, so FSDP/ZeRO-3 neither shard nor offload it", Shardable: false, ExpertElements: experts);
    }

    /// <summary>
    /// FSDP1 flat parameters under accelerate's TRANSFORMER_BASED_WRAP (one per decoder layer, the root holding the rest)
    /// with PEFT's <c>fsdp_auto_wrap_policy</c>, which also wraps every leaf module whose weight requires grad — each LoRA
    /// factor (lora_A, lora_B) — as its own unit, so a layer's flat parameter holds only its base tensors.
    /// </summary>
    internal static IReadOnlyList<double> FsdpUnits(ModelArchitecture arch, Selection.TrainableSelection sel, Func<ParameterTensor, double> tensorBytes, double adapterBytes)
    {
        var units = arch.Tensors.GroupBy(t => t.Layer ?? -1).OrderBy(g => g.Key).Select(g => g.Sum(tensorBytes)).ToList();
        units.AddRange(sel.Adapters.Select(a => a.Elements * adapterBytes));
        return units;
    }

    /// <summary>
    /// Korthikanti's split for the single-GPU ledger's lines: norm inputs, layer checkpoints, the head input, the embedding
    /// and final-norm outputs a DFA step holds, and the inputs of column-parallel projections live in the sequence region;
    /// everything per head or per FFN column (q, k, v, scores, MLP intermediates, vocab-parallel logits, LoRA) is split by TP.
    /// </summary>
    internal static TensorParallelSplit SplitOf(LineKind kind) => kind switch
    {
        LineKind.ActivationsNorms or LineKind.ActivationsFinalNormAndHeadInput or LineKind.DfaHeldOutputs
            or LineKind.ActivationCheckpoints or LineKind.ActivationCheckpointsOffloaded or LineKind.ActivationCheckpointInTransit
            or LineKind.ActivationsAttentionInputs => TensorParallelSplit.SequenceRegion,
        _ => TensorParallelSplit.TensorRegion,
    };
}
