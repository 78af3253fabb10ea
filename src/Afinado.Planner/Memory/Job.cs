using Afinado.Planner.Architecture;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Memory;

/// <summary>
/// What the user wants to run. Defaults are the README's default plan: LoRA training in bf16, batch 1, sequence 2048,
/// SDPA attention, no checkpointing, AdamW. <see cref="Validate"/> turns every impossible combination into an <see cref="InputError"/>.
/// </summary>
public sealed record Job
{
    public const int MaxBatch = 1_000_000;
    public const int MaxSeq = 10_000_000;

    public JobTask Task { get; init; } = JobTask.Train;
    public TrainingMethod Method { get; init; } = TrainingMethod.Lora;
    public IReadOnlyList<string> FreezePatterns { get; init; } = [];
    /// <summary>LoRA settings for lora/qlora (null = <see cref="LoraConfig"/> defaults).</summary>
    public LoraConfig? Lora { get; init; }
    public Precision Precision { get; init; } = Precision.Bf16;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>The learning rule; non-backprop rules have their own ledger (<see cref="RuleLedger"/>).</summary>
    public LearningRule Rule { get; init; } = LearningRule.Backprop;
    /// <summary>Guided ES: k, the number of recent surrogate gradients that span the guiding subspace.</summary>
    public int GuidedEsSubspace { get; init; } = 1;
    /// <summary>Micro-batch per step (sequences).</summary>
    public int Batch { get; init; } = 1;
    /// <summary>Training: tokens per sequence. Inference: prompt tokens processed by prefill.</summary>
    public int Seq { get; init; } = 2048;
    /// <summary>Inference: tokens the KV cache holds at the end (prompt + generated). Null = <see cref="Seq"/>.</summary>
    public int? Context { get; init; }
    public Checkpointing Checkpointing { get; init; } = Checkpointing.None;
    /// <summary>PYTORCH_CUDA_ALLOC_CONF of the run (<c>--alloc-conf</c>): expandable segments, max_split_size.</summary>
    public Allocator.AllocatorSettings AllocConf { get; init; } = Allocator.AllocatorSettings.Default;
    /// <summary>The software stack (<c>--stack</c>): CUDA context, kernels and workspaces outside the step's tensors.</summary>
    public Allocator.RuntimeStack Stack { get; init; } = Allocator.RuntimeStack.Default;
    public AttentionKernel Attention { get; init; } = AttentionKernel.Sdpa;
    /// <summary>Dropout probability on attention probabilities and hidden states (Llama-style training uses 0).</summary>
    public double Dropout { get; init; }
    /// <summary>Storage of the base weights; null = the checkpoint's own format when it has one (<see cref="Checkpoint"/>),
    /// else the precision regime's default (nf4 for QLoRA).</summary>
    public DType? WeightsDtype { get; init; }
    /// <summary>The GPTQ/AWQ/bitsandbytes format the checkpoint is stored in (<c>Planner.ForCheckpoint</c> sets it from the
    /// config's quantization_config); used while <see cref="WeightsDtype"/> is null, as transformers loads such a checkpoint.</summary>
    public QuantizedCheckpoint? Checkpoint { get; init; }
    /// <summary>
    /// LoRA adapter storage; null = fp32, as PEFT keeps adapters over a 16-bit base (autocast_adapter_dtype=True).
    /// torchtune keeps them in the model dtype (bf16).
    /// </summary>
    public DType? AdapterDtype { get; init; }
    /// <summary>Library that stores a quantized base (decides whether its block constants are sharded with it).</summary>
    public QuantLibrary QuantLibrary { get; init; } = QuantLibrary.BitsAndBytes;
    /// <summary>KV-cache storage for inference; null = the compute dtype.</summary>
    public DType? KvDtype { get; init; }
    /// <summary>
    /// PEFT's <c>prepare_model_for_kbit_training</c> on a quantized base, as TRL's SFTTrainer runs it on 4-bit models:
    /// embeddings, norms and the head are cast to fp32, so the residual stream is fp32 and bitsandbytes layers return
    /// fp32 (they compute in 16 bits and cast back to the input's dtype): activations, checkpoints and logits are fp32.
    /// </summary>
    public bool KbitPrep { get; init; }
    /// <summary>Inference: transformers' cache class (dynamic grows per step; static holds the full context from prefill).</summary>
    public KvCacheKind KvCache { get; init; } = KvCacheKind.Dynamic;
    /// <summary>transformers' experts backend for MoE blocks; null: the stack's default (<see cref="ResolvedExperts"/>).</summary>
    public ExpertsBackend? Experts { get; init; }
    /// <summary>The experts backend that runs: as given, else grouped_mm where the stack's torch has it (≥ 2.9), else eager.</summary>
    public ExpertsBackend ResolvedExperts => Experts ?? (Stack.GroupedMm ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager);
    public int GradAccumulation { get; init; } = 1;
    /// <summary>torch.compile-style fusion: fused norms and gated activations keep only their inputs (torchtune's compile=True).</summary>
    public bool Compile { get; init; }
    /// <summary>Optimizer step fused into backward (torchtune optimizer_in_bwd): gradients never coexist.</summary>
    public bool OptimizerInBackward { get; init; }
    /// <summary>Activation checkpoints live in host memory (torchtune enable_activation_offloading); needs full checkpointing.</summary>
    public bool OffloadActivations { get; init; }
    /// <summary>Fused optimizer kernel (torch.optim.AdamW(fused=True)): no param-sized temporaries in the step.</summary>
    public bool FusedOptimizer { get; init; }
    /// <summary>Cross-entropy computed in this many chunks (torchtune CEWithChunkedOutputLoss uses 8); 1 = plain.</summary>
    public int LossChunks { get; init; } = 1;
    /// <summary>
    /// transformers before 4.46: the causal-LM forward upcasts the logits to fp32 in the model output and copies a shifted
    /// slice (<c>logits[..., :-1, :].contiguous()</c>) for the loss; from 4.46 the loss function upcasts its own copy.
    /// Costs 2–4 B per token × vocab more at the end of the forward pass.
    /// </summary>
    public bool LegacyLoss { get; init; }
    /// <summary>
    /// The training loop holds the model output (its logits) until backward ends, as in <c>out = model(...);
    /// out.loss.backward()</c> (Answer.AI fsdp_qlora train.py); HF Trainer drops it first. Costs the logits again during backward.
    /// </summary>
    public bool KeepOutput { get; init; }

    /// <summary>The job runs on a GPU below compute capability 8.0 (Turing, Volta), where PyTorch's SDPA has no flash or
    /// cuDNN kernel and its memory-efficient kernel takes no bf16 (<see cref="ActivationModel.SdpaFallsBackToMath"/>). Not a
    /// flag: the verdict for such a GPU sets it (<see cref="Fit.DeviceSupport.OnDevice"/>).</summary>
    public bool PreAmpereGpu { get; init; }

    /// <summary>Images per sequence, run through a multimodal model's vision tower (0: a text step). Their tokens are part of
    /// <see cref="Seq"/>, as the processor puts them in the tokenized sequence.</summary>
    public int Images { get; init; }
    /// <summary>The images' size in pixels, for processors that keep it (the Qwen VL models'); null for towers that resize
    /// every image to their own size (Gemma 3's SigLIP).</summary>
    public int? ImageWidth { get; init; }
    public int? ImageHeight { get; init; }
    /// <summary>What full and freeze finetuning train of the image side with images in the step (frozen: LLaMA-Factory's
    /// default; a text step runs nothing through the tower, and LoRA reaches it through its targets).</summary>
    public VisionTraining VisionTower { get; init; }
    /// <summary>Full or freeze finetuning that leaves the vision tower frozen (what the plan's warning says).</summary>
    public bool TowerFrozenByMethod => IsTraining && !Method.UsesAdapters() && VisionTower != VisionTraining.Tower;

    public const int MaxImages = 1024;
    public const int MaxImageSide = 65_536;

    public int ContextTokens => Context ?? Seq;
    public bool IsTraining => Task == JobTask.Train;

    /// <summary>The storage dtype of the (frozen or trained) base weights for this job: for a quantized checkpoint the dtype
    /// class of its format (<see cref="QuantizedCheckpoint.Storage"/>), whose exact bytes the ledgers take from <see cref="StoredFormat"/>.</summary>
    public DType ResolvedWeightsDtype => WeightsDtype ?? Checkpoint?.Storage ?? DefaultWeightsDtype();

    /// <summary>The checkpoint format the base weights are planned in, unless --weights-dtype converts them to another.</summary>
    public QuantizedCheckpoint? StoredFormat => WeightsDtype is null ? Checkpoint : null;

    /// <summary>The weights' storage by name, as the plan table and JSON show it (<c>gptq-int4</c>, <c>bnb-nf4-dq</c>, <c>bf16</c>).</summary>
    public string WeightsName => StoredFormat?.Name ?? ResolvedWeightsDtype.Name();

    public DType ResolvedKvDtype => KvDtype ?? Precision.ComputeDType();

    public DType ResolvedAdapterDtype => AdapterDtype ?? DType.Fp32;

    private DType DefaultWeightsDtype()
    {
        // QLoRA as today's recipes run it: NF4 with double quantization of the block constants (4.127 bits/param) —
        // artidoro/qlora's --double_quant default True, PEFT's examples/sft QLoRA + FSDP recipe --use_nested_quant True,
        // and torchao's NF4Tensor (torchtune) quantizes its scalers too. Plain nf4 (4.5 bits) stays available by flag.
        if (Method == TrainingMethod.QLora && IsTraining) return DType.Nf4Dq;
        return Precision switch
        {
            Precision.Fp32 => DType.Fp32,
            // AMP keeps trainable weights in fp32; a frozen LoRA base (or an inference model) is loaded in 16-bit.
            Precision.AmpBf16 => IsTraining && !Method.UsesAdapters() ? DType.Fp32 : DType.Bf16,
            Precision.AmpFp16 => IsTraining && !Method.UsesAdapters() ? DType.Fp32 : DType.Fp16,
            Precision.Fp16 => DType.Fp16,
            _ => DType.Bf16,
        };
    }

    /// <summary>Checks ranges and combinations; throws <see cref="InputError"/> naming the flag and the fix.</summary>
    public void Validate()
    {
        if (KbitPrep && !ResolvedWeightsDtype.IsQuantized())
            throw new InputError(JobParameters.KbitPrep, "prepares a quantized (4- or 8-bit) base, and these weights are " + ResolvedWeightsDtype.Name(), $"Use it with {JobParameters.Method} qlora or a quantized {JobParameters.WeightsDtype}.");
        if (Batch < 1 || Batch > MaxBatch)
            throw new InputError(JobParameters.Batch, $"{Batch} is out of range", $"Use a micro-batch between 1 and {MaxBatch:N0}.");
        if (Seq < 1 || Seq > MaxSeq)
            throw new InputError(JobParameters.Seq, $"{Seq} is out of range", $"Use a sequence length between 1 and {MaxSeq:N0}.");
        if (Context is { } ctx)
        {
            if (IsTraining)
                throw new InputError(JobParameters.Context, $"applies to {JobParameters.Task} infer only", $"For training, set the sequence length with {JobParameters.Seq}.");
            if (ctx < Seq || ctx > MaxSeq)
                throw new InputError(JobParameters.Context, $"{ctx} must be at least {JobParameters.Seq} ({Seq}) and at most {MaxSeq:N0}", $"Set {JobParameters.Context} to prompt plus generated tokens.");
        }
        if (Images < 0 || Images > MaxImages)
            throw new InputError(JobParameters.Images, $"{Images} is out of range", $"Use 0 (a text step) to {MaxImages:N0} images per sequence.");
        if (ImageWidth is { } iw && (iw < 1 || iw > MaxImageSide) || ImageHeight is { } ih && (ih < 1 || ih > MaxImageSide))
            throw new InputError(JobParameters.ImageSize, $"{ImageWidth} × {ImageHeight} is out of range", $"Give width and height between 1 and {MaxImageSide:N0} pixels, e.g. 1024x768.");
        if ((ImageWidth is null) != (ImageHeight is null))
            throw new InputError(JobParameters.ImageSize, "needs both a width and a height", "Give it as WIDTHxHEIGHT, e.g. 1024x768.");
        if (ImageWidth is not null && Images == 0)
            throw new InputError(JobParameters.ImageSize, "sizes image inputs, and the job has none", $"Add {JobParameters.Images} N (images per sequence), or drop it.");
        if (VisionTower != VisionTraining.Frozen)
        {
            if (!IsTraining)
                throw new InputError(JobParameters.VisionTower, $"chooses what full and freeze finetuning train (got {JobParameters.Task} infer)", $"Drop {JobParameters.VisionTower}.");
            if (Method.UsesAdapters())
                throw new InputError(JobParameters.VisionTower, $"chooses what full and freeze finetuning train (got {JobParameters.Method} {Method.Name()})",
                    $"LoRA reaches the tower through its targets: add its modules to {JobParameters.LoraTargets}, or drop {JobParameters.VisionTower}.");
            if (Images == 0)
                throw new InputError(JobParameters.VisionTower, "trains the image side, and a text step runs nothing through it (no gradient, no optimizer state)",
                    $"Add {JobParameters.Images} N (images per sequence), or drop {JobParameters.VisionTower}.");
        }
        if (!(Dropout >= 0 && Dropout < 1))
            throw new InputError(JobParameters.Dropout, $"{Dropout} is outside [0, 1)", "Use a probability such as 0 or 0.1.");
        if (GradAccumulation < 1 || GradAccumulation > 1_000_000)
            throw new InputError(JobParameters.GradAccumulation, $"{GradAccumulation} is out of range", "Use 1 or more accumulation steps.");
        if (LossChunks < 1 || LossChunks > 1024)
            throw new InputError(JobParameters.LossChunks, $"{LossChunks} is out of range", "Use 1 (plain cross-entropy) or a chunk count such as 8.");
        if (LegacyLoss && LossChunks > 1)
            throw new InputError(JobParameters.LegacyLoss, "describes transformers' plain cross-entropy, not a chunked loss", $"Drop {JobParameters.LegacyLoss} or use {JobParameters.LossChunks} 1.");
        if ((LegacyLoss || KeepOutput) && !IsTraining)
            throw new InputError(LegacyLoss ? JobParameters.LegacyLoss : JobParameters.KeepOutput, $"applies to training ({JobParameters.Task} train)", $"Drop the flag for {JobParameters.Task} infer.");
        // transformers casts fp32 queries for flash-attn to the autocast dtype, or a quantized model's dtype, else to its
        // first Linear's weight dtype (integrations/flash_attention.py get_target_dtype): in pure fp32 that is fp32, and
        // flash-attn raises "FlashAttention only support fp16 and bf16 data type".
        if (Attention == AttentionKernel.Flash && Precision == Precision.Fp32)
            throw new InputError(JobParameters.Attention,
                $"flash runs on fp16/bf16 inputs only, and with {JobParameters.Precision} fp32 (no autocast) transformers hands it fp32 queries, which flash-attn refuses",
                $"Use {JobParameters.Precision} amp-bf16 (autocast casts the queries) or {JobParameters.Attention} sdpa.");
        if (KvDtype is { } kv && kv is DType.Nf4 or DType.Nf4Dq or DType.Mxfp4)
            throw new InputError(JobParameters.KvDtype, $"{kv.Name()} is a weight format, not a KV-cache format", "Use fp32, fp16, bf16, fp8, int8 or int4.");

        if (AdapterDtype is { } ad && ad is not (DType.Fp32 or DType.Bf16 or DType.Fp16))
            throw new InputError(JobParameters.AdapterDtype, $"adapters cannot be stored as {ad.Name()}", "Use fp32 (PEFT's default), bf16 or fp16.");
        if (AdapterDtype is not null && !Method.UsesAdapters())
            throw new InputError(JobParameters.AdapterDtype, $"applies to {JobParameters.Method} lora or qlora (got {Method.Name()})", $"Drop {JobParameters.AdapterDtype}.");
        var w = ResolvedWeightsDtype;
        // A setting that belongs to another job would be ignored without a word: refused, naming it.
        if (QuantLibrary != QuantLibrary.BitsAndBytes && !w.IsQuantized())
            throw new InputError(JobParameters.QuantLibrary, $"chooses the library of a quantized base, and these weights are {w.Name()}",
                $"Drop {JobParameters.QuantLibrary}, or quantize the base ({JobParameters.Method} qlora or {JobParameters.WeightsDtype} nf4).");
        if (GuidedEsSubspace != 1 && Rule != LearningRule.GuidedEs)
            throw new InputError(JobParameters.GuidedEsSubspace, $"sizes guided ES's subspace, and {JobParameters.Rule} is {Rule.Name()}", $"Drop it, or use {JobParameters.Rule} guided-es.");
        if (IsTraining && (KvDtype is not null || KvCache != KvCacheKind.Dynamic))
            throw new InputError(KvDtype is not null ? JobParameters.KvDtype : JobParameters.KvCache, $"sets the KV cache of {JobParameters.Task} infer, and a training step keeps none",
                $"Drop it for {JobParameters.Task} train.");
        if (!IsTraining)
        {
            if (Rule != LearningRule.Backprop)
                throw new InputError(JobParameters.Rule, $"{Rule.Name()} is a training rule and this is {JobParameters.Task} infer", $"Drop {JobParameters.Rule}, or use {JobParameters.Task} train.");
            if (TrainingOnlySetting() is { } trainingOnly)
                throw new InputError(trainingOnly, $"applies to training ({JobParameters.Task} train): inference runs no backward and no optimizer", $"Drop it for {JobParameters.Task} infer.");
            return;
        }
        ValidateRule();
        // transformers trains gpt-oss from an MXFP4 checkpoint by dequantizing it (Mxfp4Config(dequantize=True), OpenAI's
        // fine-tuning cookbook): there is no backward through the packed experts.
        if (w == DType.Mxfp4)
            throw new InputError(JobParameters.WeightsDtype, "mxfp4 experts are dequantized to bf16 for training (Mxfp4Config(dequantize=True))", $"Use {JobParameters.WeightsDtype} bf16 with {JobParameters.Method} lora, or {JobParameters.Task} infer for mxfp4.");
        if (Method == TrainingMethod.QLora && !w.IsQuantized())
            throw new InputError(JobParameters.WeightsDtype, $"QLoRA needs a quantized base, got {w.Name()}", $"Use {JobParameters.WeightsDtype} nf4 or nf4-dq, or {JobParameters.Method} lora.");
        if (!Method.UsesAdapters() && w.IsQuantized())
            throw new InputError(JobParameters.WeightsDtype, $"{WeightsName} weights cannot be trained directly with {JobParameters.Method} {Method.Name()}", $"Use {JobParameters.Method} qlora (adapters over a quantized base) or a 16/32-bit dtype.");
        if (!Method.UsesAdapters() && WeightsDtype is { } given && given != DefaultWeightsDtype())
            throw new InputError(JobParameters.WeightsDtype, $"{JobParameters.Precision} {Precision.Name()} trains {DefaultWeightsDtype().Name()} weights, not {given.Name()}", $"Drop {JobParameters.WeightsDtype} or change {JobParameters.Precision} (fp32, amp-bf16, amp-fp16, bf16, fp16).");
        if (OffloadActivations && Checkpointing != Checkpointing.Full)
            throw new InputError(JobParameters.OffloadActivations, $"offloads activation checkpoints, so it needs {JobParameters.Checkpointing} full", $"Add {JobParameters.Checkpointing} full.");
        if (OptimizerInBackward && GradAccumulation > 1)
            throw new InputError(JobParameters.OptimizerInBackward, "cannot be combined with gradient accumulation", $"Use {JobParameters.GradAccumulation} 1, or drop {JobParameters.OptimizerInBackward}.");
    }

    /// <summary>The first training-only setting moved from its default (the defaults are what an inference job carries).</summary>
    private InputParameter? TrainingOnlySetting() =>
        Checkpointing != Checkpointing.None ? JobParameters.Checkpointing
        : Optimizer != OptimizerKind.AdamW ? JobParameters.Optimizer
        : GradAccumulation > 1 ? JobParameters.GradAccumulation
        : LossChunks > 1 ? JobParameters.LossChunks
        : Compile ? JobParameters.Compile
        : OptimizerInBackward ? JobParameters.OptimizerInBackward
        : FusedOptimizer ? JobParameters.FusedOptimizer
        : OffloadActivations ? JobParameters.OffloadActivations
        : null;

    private void ValidateRule()
    {
        if (GuidedEsSubspace < 1 || GuidedEsSubspace > 1024)
            throw new InputError(JobParameters.GuidedEsSubspace, $"{GuidedEsSubspace} is out of range", "Use a subspace of 1 to 1,024 surrogate gradients (the paper uses 1–20).");
        if (Rule == LearningRule.Backprop) return;
        if (Checkpointing != Checkpointing.None)
            throw new InputError(JobParameters.Checkpointing, $"{JobParameters.Rule} {Rule.Name()} keeps no graph across blocks, so there is nothing to recompute",
                $"Use {JobParameters.Checkpointing} none with {JobParameters.Rule} es, es-direct, dfa or guided-es.");
        if (OptimizerInBackward)
            throw new InputError(JobParameters.OptimizerInBackward, $"{JobParameters.Rule} {Rule.Name()} has no backward pass over the whole model to fuse the step into", $"Drop {JobParameters.OptimizerInBackward}.");
        // torchtune's chunked output loss belongs to its backprop recipes; a rule's forward takes transformers' loss over
        // the whole sequence (the rule ledger and the ES trace both plan that one).
        if (LossChunks > 1)
            throw new InputError(JobParameters.LossChunks, $"torchtune's chunked output loss is a backprop recipe's, and {JobParameters.Rule} {Rule.Name()} computes the loss over the whole sequence",
                $"Drop {JobParameters.LossChunks} with {JobParameters.Rule} es, es-direct, dfa or guided-es.");
    }
}
