namespace Afinado.Planner.Memory;

/// <summary>What follows from a line's kind: its category, and where runtime memory sits relative to PyTorch's allocator.</summary>
public static class LineKinds
{
    /// <summary>Each kind belongs to one category, so a line's category cannot disagree with what the line is.</summary>
    public static Category CategoryOf(this LineKind kind) => kind switch
    {
        LineKind.Weights or LineKind.WeightsTrainable or LineKind.WeightsFrozen or LineKind.WeightsFrozenQuantized
            or LineKind.WeightsFrozenQuantizedCodes or LineKind.QuantizationConstants or LineKind.WeightsSkippedByQuantizer
            or LineKind.MasterWeights or LineKind.AmpWeightCopies or LineKind.AmpWeightCopiesOfCheckpointedLayers
            or LineKind.AmpWeightCopiesOfRecomputedLayer or LineKind.AmpWeightCopyOfHead or LineKind.LoraAdapters
            or LineKind.DfaFeedbackMatrices or LineKind.Zero3GatheredParameters or LineKind.Zero3PersistentParameters
            or LineKind.FsdpGatheredLayers or LineKind.FsdpRootUnit or LineKind.FsdpHeadUnit or LineKind.FsdpEmbeddingUnit
            or LineKind.FsdpOffloadStagedShard or LineKind.ZeroAllGatherBucket => Category.Weights,
        LineKind.Gradients or LineKind.GradientsOneTensorAtATime or LineKind.GradientHead or LineKind.EsEstimate
            or LineKind.EsEstimateGradCopy or LineKind.Fp32GradientPartition or LineKind.Zero3ModuleGradient
            or LineKind.FsdpUnitGradient or LineKind.DdpReducerBuckets or LineKind.ZeroReduceBucket => Category.Gradients,
        LineKind.OptimizerState or LineKind.GuidedEsSurrogateHistory => Category.OptimizerState,
        LineKind.OptimizerStatePaged => Category.Paged,
        LineKind.ActivationsNorms or LineKind.ActivationsAttentionInputs or LineKind.ActivationsAttentionCore
            or LineKind.ActivationsAttentionScores or LineKind.ActivationsMlp or LineKind.ActivationsLora
            or LineKind.ActivationsDropoutMasks or LineKind.ActivationsWhileLastLayerAttentionRuns or LineKind.ActivationsLayerInBackward
            or LineKind.ActivationsFinalNormAndHeadInput or LineKind.ActivationCheckpoints or LineKind.ActivationCheckpointInTransit
            or LineKind.RecomputedLayer or LineKind.CausalMask or LineKind.SlidingWindowMask or LineKind.ForwardIntermediates or LineKind.MinibatchInputs
            or LineKind.DfaBlockOutputs or LineKind.DfaHeldOutputs or LineKind.EsPopulationForward or LineKind.NoGradForwardLayer
            or LineKind.PrefillActivations or LineKind.ModelForwardLocals or LineKind.DecodeTemporaries
            or LineKind.VisionPixelValues or LineKind.VisionTowerActivations or LineKind.VisionImageFeatures or LineKind.VisionDecoderInputGrad
            or LineKind.VisionImageMasks or LineKind.VisionBlockMask => Category.Activations,
        LineKind.DequantizationBuffer or LineKind.ExpertDeltaWeight or LineKind.ExpertAllToAllBuffers or LineKind.GradientHead16Bit or LineKind.OptimizerTemporaries
            or LineKind.SdpaMathScoresInFlight or LineKind.EagerScoresInFlight or LineKind.BackwardTemporaries
            or LineKind.VisionTowerTemporaries or LineKind.VisionTowerBackwardTemporaries or LineKind.SelectBackwardStackGradient
            or LineKind.DfaInjectedErrors or LineKind.EsPerturbation or LineKind.EsParameterSnapshot or LineKind.EsPopulationWeights
            or LineKind.EsLowRankFactors or LineKind.EsLowRankCombination or LineKind.GuidedEsSurrogateBackward
            or LineKind.GuidedEsSurrogateAndBasis => Category.Temporary,
        LineKind.LossForward or LineKind.LossBackward or LineKind.LogitsGradient or LineKind.NoGradForwardLoss
            or LineKind.LogitsLastPosition => Category.Logits,
        LineKind.KvCachePrompt or LineKind.KvCacheFullContext => Category.KvCache,
        LineKind.ActivationCheckpointsOffloaded or LineKind.FsdpPinnedParameterShards or LineKind.FsdpPinnedGradientShards
            or LineKind.CheckpointLoad => Category.Host,
        LineKind.CudaContext or LineKind.NcclCommunicator or LineKind.CpuTrainingRuntime or LineKind.CpuForwardOnlyRuntime
            or LineKind.StepRuntimeSlack or LineKind.AllocatorReserve or LineKind.AllGatherPoolBlock
            or LineKind.CublasWorkspaces or LineKind.AllocatorFragmentation or LineKind.ReplayedPeakAboveFormulas => Category.Runtime,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "every line kind belongs to a category"),
    };

    /// <summary>
    /// Runtime memory PyTorch's caching allocator never sees (CUDA context, NCCL communicators, a CPU process's runtime):
    /// it adds to what nvidia-smi or RSS reads, never to reserved or allocated bytes.
    /// </summary>
    public static bool IsRuntimeOutsideAllocator(this LineKind kind) => kind is LineKind.CudaContext or LineKind.NcclCommunicator
        or LineKind.CpuTrainingRuntime or LineKind.CpuForwardOnlyRuntime or LineKind.StepRuntimeSlack;

    /// <summary>Blocks the caching allocator holds beyond the formulas' peak tensors: counted in reserved. All but one hold no
    /// live tensor; <see cref="LineKind.ReplayedPeakAboveFormulas"/> holds tensors the trace has live at a moment the formulas
    /// lack, so the reserved figure is never below the replay's.</summary>
    public static bool IsReservedInsideAllocator(this LineKind kind) => kind is LineKind.AllocatorReserve or LineKind.AllGatherPoolBlock
        or LineKind.CublasWorkspaces or LineKind.AllocatorFragmentation or LineKind.ReplayedPeakAboveFormulas;

    /// <summary>Reserved and never handed to a tensor: the caching allocator's slack (replayed or assumed).</summary>
    public static bool IsFragmentation(this LineKind kind) => kind is LineKind.AllocatorReserve or LineKind.AllocatorFragmentation;
}
