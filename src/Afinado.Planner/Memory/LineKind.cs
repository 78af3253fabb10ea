namespace Afinado.Planner.Memory;

/// <summary>
/// The stable identity of a ledger line: what it is, whatever its display text says. Code finds lines by kind (the
/// bridge to the parallel ledger, runtime and reserve sums, validation, tests); the display text is free to change.
/// One kind may name lines of several ledgers (inference and training weights, a state on the GPU and offloaded).
/// </summary>
public enum LineKind
{
    // --- Weights -------------------------------------------------------------------------------------------------------
    /// <summary>Every parameter in one line (inference; the ZeRO paper's 16-bit weights).</summary>
    Weights,
    WeightsTrainable,
    WeightsFrozen,
    /// <summary>Quantized linears with their block constants (NF4, int8, …).</summary>
    WeightsFrozenQuantized,
    /// <summary>Quantized linears' codes alone, where the library keeps the block constants apart (bitsandbytes).</summary>
    WeightsFrozenQuantizedCodes,
    /// <summary>bitsandbytes' QuantState block constants, whole on every GPU.</summary>
    QuantizationConstants,
    /// <summary>Embeddings, norms and head next to a quantized base, which the quantizer skips (16-bit).</summary>
    WeightsSkippedByQuantizer,
    /// <summary>fp32 master weights of mixed-precision training (ZeRO counts them in the optimizer's class).</summary>
    MasterWeights,
    AmpWeightCopies,
    AmpWeightCopiesOfCheckpointedLayers,
    AmpWeightCopiesOfRecomputedLayer,
    AmpWeightCopyOfHead,
    LoraAdapters,
    DequantizationBuffer,
    /// <summary>PEFT target_parameters: the delta weight ΔW of one adapted expert stack while its module runs (and the merged
    /// weight's gradient in backward).</summary>
    ExpertDeltaWeight,
    DfaFeedbackMatrices,

    // --- Gradients -----------------------------------------------------------------------------------------------------
    Gradients,
    /// <summary>One gradient tensor at a time (optimizer in backward).</summary>
    GradientsOneTensorAtATime,
    GradientHead,
    /// <summary>The head's 16-bit weight gradient before autocast's cast to fp32.</summary>
    GradientHead16Bit,
    /// <summary>ES's gradient estimate Σ cᵢ·εᵢ (with its .grad copy where one line holds both).</summary>
    EsEstimate,
    EsEstimateGradCopy,

    // --- Optimizer -----------------------------------------------------------------------------------------------------
    OptimizerState,
    /// <summary>Paged optimizer state in unified memory (evictable, outside PyTorch's allocator).</summary>
    OptimizerStatePaged,
    OptimizerTemporaries,
    GuidedEsSurrogateHistory,

    // --- Activations and temporaries of training -----------------------------------------------------------------------
    ActivationsNorms,
    /// <summary>Inputs of the attention's linear projections (saved for their weight gradients).</summary>
    ActivationsAttentionInputs,
    /// <summary>q, k, v and the attention output.</summary>
    ActivationsAttentionCore,
    ActivationsAttentionScores,
    ActivationsMlp,
    ActivationsLora,
    ActivationsDropoutMasks,
    ActivationsWhileLastLayerAttentionRuns,
    ActivationsLayerInBackward,
    ActivationsFinalNormAndHeadInput,
    ActivationCheckpoints,
    ActivationCheckpointsOffloaded,
    ActivationCheckpointInTransit,
    RecomputedLayer,
    CausalMask,
    /// <summary>transformers' boolean mask for sliding-window (or chunked) layers once the sequence reaches the window: one
    /// per forward, freed when the model's forward returns.</summary>
    SlidingWindowMask,
    /// <summary>Image inputs: pixel_values as the processor made them.</summary>
    VisionPixelValues,
    /// <summary>Image inputs: the vision tower's (and merger's) saved tensors, when its adapters or weights train.</summary>
    VisionTowerActivations,
    /// <summary>Image inputs: one tower block's forward temporaries, the tower's hidden states and the pixels' compute-dtype copy.</summary>
    VisionTowerTemporaries,
    /// <summary>Image inputs: a tower block's backward temporaries beyond a decoder layer's.</summary>
    VisionTowerBackwardTemporaries,
    /// <summary>Image inputs: the image features the decoder's inputs_embeds are scattered from.</summary>
    VisionImageFeatures,
    /// <summary>Image inputs: what the decoder's first layers keep once their input needs a gradient (the tower trains).</summary>
    VisionDecoderInputGrad,
    /// <summary>Image inputs: Pixtral's block-diagonal attention mask over every image's patches.</summary>
    VisionBlockMask,
    /// <summary>Image inputs: Gemma 3's boolean masks with bidirectional image blocks, per sequence.</summary>
    VisionImageMasks,
    SdpaMathScoresInFlight,
    EagerScoresInFlight,
    BackwardTemporaries,
    /// <summary>The eager experts loop with trainable stacks: SelectBackward writes one expert's slice gradient into a zero
    /// tensor of the whole stack before AccumulateGrad adds it into .grad.</summary>
    SelectBackwardStackGradient,
    /// <summary>Forward intermediates of a small network, counted as one line (the MLP rule ledger, run summaries).</summary>
    ForwardIntermediates,
    /// <summary>A minibatch's inputs and labels.</summary>
    MinibatchInputs,
    DfaBlockOutputs,
    /// <summary>Outputs the DFA step's dispose scope holds though autograd saves none of them (CPU).</summary>
    DfaHeldOutputs,
    DfaInjectedErrors,
    EsPerturbation,
    EsParameterSnapshot,
    /// <summary>Stacked perturbed weights of a batched population.</summary>
    EsPopulationWeights,
    /// <summary>The population's forward without autograd (small networks, as one line).</summary>
    EsPopulationForward,
    EsLowRankFactors,
    EsLowRankCombination,
    GuidedEsSurrogateBackward,
    GuidedEsSurrogateAndBasis,
    NoGradForwardLayer,
    NoGradForwardLoss,

    // --- Logits and loss -----------------------------------------------------------------------------------------------
    LossForward,
    LossBackward,
    LogitsGradient,

    // --- Inference -----------------------------------------------------------------------------------------------------
    KvCachePrompt,
    KvCacheFullContext,
    PrefillActivations,
    /// <summary>What the model's forward keeps until it returns: <c>inputs_embeds</c> (the embedding output),
    /// <c>cache_position</c> and the rotary tables.</summary>
    ModelForwardLocals,
    LogitsLastPosition,
    DecodeTemporaries,

    // --- Parallel engines' buffers (per GPU) ---------------------------------------------------------------------------
    Fp32GradientPartition,
    Zero3GatheredParameters,
    Zero3ModuleGradient,
    Zero3PersistentParameters,
    FsdpGatheredLayers,
    FsdpRootUnit,
    FsdpHeadUnit,
    FsdpEmbeddingUnit,
    FsdpOffloadStagedShard,
    FsdpUnitGradient,
    DdpReducerBuckets,
    ZeroReduceBucket,
    ZeroAllGatherBucket,
    /// <summary>Expert parallelism: the all-to-all send and receive buffers of one MoE layer's token dispatch and combine.</summary>
    ExpertAllToAllBuffers,

    // --- Host memory of a node -------------------------------------------------------------------------------------------
    FsdpPinnedParameterShards,
    FsdpPinnedGradientShards,
    CheckpointLoad,

    // --- Runtime outside PyTorch's caching allocator ---------------------------------------------------------------------
    CudaContext,
    NcclCommunicator,
    CpuTrainingRuntime,
    CpuForwardOnlyRuntime,
    /// <summary>Allocator and runtime working set of a small network's step (measured).</summary>
    StepRuntimeSlack,

    // --- Inside PyTorch's caching allocator but not a tensor of the step ---------------------------------------------------
    /// <summary>cuBLAS / cuBLASLt workspaces taken from the allocator at the first matmul (<see cref="Allocator.RuntimeStack"/>).</summary>
    CublasWorkspaces,
    /// <summary>Reserved but unallocated at the peak, from the caching-allocator replay (<see cref="Allocator.ReservedMemory"/>).</summary>
    AllocatorFragmentation,
    /// <summary>The replayed step's allocated peak above the formulas' peak (and the workspaces): tensors live at a moment
    /// the ledger's formulas do not have, which the op-by-op trace does (e.g. the last layer's attention backward).</summary>
    ReplayedPeakAboveFormulas,
    /// <summary>Reserved but unallocated, assumed as a share of the peak where the step is not replayed.</summary>
    AllocatorReserve,
    /// <summary>FSDP1's all-gather stream holds a second layer block that only it can reuse.</summary>
    AllGatherPoolBlock,
}
