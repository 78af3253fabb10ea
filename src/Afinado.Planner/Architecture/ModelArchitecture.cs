namespace Afinado.Planner.Architecture;

/// <summary>How the feed-forward block is built.</summary>
public enum MlpKind
{
    /// <summary>up → activation → down (GPT-2, GPT-NeoX, Falcon, phi-1.5/2, StarCoder): 2 linears.</summary>
    Plain,
    /// <summary>act(gate(x)) * up(x) → down (Llama SwiGLU, Gemma GeGLU, Phi-3 fused gate_up): 3 linears' worth of weights.</summary>
    Gated,
}

public enum NormKind { RmsNorm, LayerNorm }

public enum PositionKind { Rotary, Learned, Alibi }

/// <summary>How much of a plan the architecture supports: <see cref="Exact"/> for a family built tensor by tensor as
/// transformers does; <see cref="Generic"/> for a decoder read from its safetensors headers (exact weights, activations
/// from the generic decoder's model, approximate).</summary>
public enum ModelSupport { Exact, Generic }

/// <summary>
/// One description of a decoder-only transformer, read once from a Hugging Face <c>config.json</c> and shared by the
/// planner (parameter and memory ledgers) and the trainer (the TorchSharp model is built from it).
/// Every parameter tensor is listed by <see cref="Tensors"/> with its Hugging Face name, so counts are exact and
/// freeze / LoRA patterns match the names users know.
/// </summary>
public sealed record ModelArchitecture
{
    /// <summary>Hugging Face <c>model_type</c>, e.g. <c>llama</c>.</summary>
    public required string ModelType { get; init; }
    /// <summary>A display name (catalog id or folder), not part of the math.</summary>
    public string Name { get; init; } = "";

    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads: equal to <see cref="NumHeads"/> for MHA, fewer for GQA, 1 for MQA.</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Per-head width; usually hidden/heads but not always (Gemma 7B: 256 with hidden 3072 and 16 heads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>Width of each value head when it differs from the key's <see cref="HeadDim"/> (DeepSeek MLA: keys
    /// qk_nope + qk_rope = 192 wide, values v_head_dim = 128); null means HeadDim.</summary>
    public int? ValueHeadDim { get; init; }
    /// <summary>DeepSeek's multi-head latent attention (null: plain attention): its ranks and head widths.</summary>
    public LatentAttention? Mla { get; init; }
    /// <summary>K plus V elements per cached token per layer: kv_heads · (key width + value width).</summary>
    public long KvElementsPerTokenPerLayer => (long)NumKvHeads * (HeadDim + (ValueHeadDim ?? HeadDim));
    /// <summary>Feed-forward width (for a gated MLP the width of gate and of up, each).</summary>
    public required int IntermediateSize { get; init; }

    public MlpKind Mlp { get; init; } = MlpKind.Gated;
    /// <summary>Hugging Face activation name (<c>silu</c>, <c>gelu_new</c>, <c>gelu_pytorch_tanh</c>, ...).</summary>
    public string Activation { get; init; } = "silu";
    public NormKind Norm { get; init; } = NormKind.RmsNorm;
    public double NormEpsilon { get; init; } = 1e-5;
    public PositionKind Positions { get; init; } = PositionKind.Rotary;
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>Fraction of the head width that is rotated (phi-2: 0.4, NeoX: rotary_pct). 1 for Llama.</summary>
    public double PartialRotaryFactor { get; init; } = 1.0;
    public int MaxPositionEmbeddings { get; init; } = 2048;

    public bool TiedEmbeddings { get; init; }
    public bool QkvBias { get; init; }
    public bool AttentionOutBias { get; init; }
    public bool MlpBias { get; init; }
    public bool LmHeadBias { get; init; }
    /// <summary>Per-head norm on q and k: RMSNorm over head_dim (Qwen3), or LayerNorm with bias (phi with <c>qk_layernorm</c>).</summary>
    public bool QkNorm { get; init; }
    /// <summary>Per layer, whether it applies rotary embeddings (null: every layer does). Llama 4's NoPE layers
    /// (<c>no_rope_layers</c> 0) skip them and its weightless q/k L2 norm.</summary>
    public IReadOnlyList<bool>? RopeLayers { get; init; }
    /// <summary>Llama4TextAttention: rotary as a complex fp32 product (<c>apply_rotary_emb</c>), then a weightless L2 norm of
    /// q and k (<see cref="QkNorm"/>) on RoPE layers, and on NoPE layers the query scaled by a per-position temperature
    /// (<c>attn_temperature_tuning</c>).</summary>
    public bool Llama4Attention { get; init; }
    /// <summary>Llama 4's <c>attn_temperature_tuning</c> (any non-zero value, as Python reads it): NoPE layers scale the
    /// query by log(⌊(position + 1) / floor_scale⌋ + 1) · attn_scale + 1.</summary>
    public bool AttentionTemperatureTuning { get; init; }

    /// <summary>Whether layer <paramref name="layer"/> applies rotary embeddings.</summary>
    public bool UsesRope(int layer) => Positions == PositionKind.Rotary && (RopeLayers is null || RopeLayers[layer]);

    /// <summary>Mixture of experts: number of experts per layer (0 = dense) and experts each token is routed to.</summary>
    public int NumExperts { get; init; }
    public int ExpertsPerToken { get; init; }
    /// <summary>Width of each routed expert's gate/up when it differs from <see cref="IntermediateSize"/> (qwen MoE
    /// <c>moe_intermediate_size</c>); null when experts are as wide as the dense MLP (Mixtral).</summary>
    public int? ExpertIntermediateSize { get; init; }
    /// <summary>Widest MLP of a MoE model that every token runs in full: a qwen MoE dense layer or qwen2_moe's shared
    /// expert; 0 when every MLP is routed (Mixtral, Qwen3-30B-A3B).</summary>
    public int UnroutedMlpWidth { get; init; }
    /// <summary>
    /// The MoE forward runs every expert over every token and masks by the routing scores (transformers' Llama4TextMoe:
    /// <c>hidden_states.repeat(E, 1)</c>, then <c>torch.bmm</c> over all E experts), so activations scale with
    /// <see cref="NumExperts"/> rather than <see cref="ExpertsPerToken"/>; false for top-k dispatch (Mixtral, Qwen MoE).
    /// </summary>
    public bool MoeRunsEveryExpert { get; init; }
    /// <summary>How transformers' MoE block runs in training, where its saved tensors are modelled one by one (the
    /// activation model); <see cref="MoeTrainingLoop.Other"/> keeps the generic routed-MLP count.</summary>
    public MoeTrainingLoop MoeLoop { get; init; }
    /// <summary>The block renormalises the top-k routing weights by their sum (Mixtral always; DeepSeek-V3 and Qwen2/3 MoE
    /// with <c>norm_topk_prob</c>).</summary>
    public bool MoeRenormalizesTopK { get; init; }
    /// <summary>PhiMoE's <c>input_jitter_noise</c>: in training the block multiplies its input in place by uniform noise in
    /// [1 − j, 1 + j], a tensor autograd keeps; 0 for every other family.</summary>
    public double MoeInputJitter { get; init; }
    /// <summary>Qwen2-MoE: the shared expert's output is scaled by <c>sigmoid(shared_expert_gate(x))</c> per token.</summary>
    public bool MoeSharedExpertGate { get; init; }
    /// <summary>DeepSeek-V2's group_limited_greedy routing: the scores are masked to the best groups (masked_fill keeps
    /// its bool mask, E bytes per token) before top-k.</summary>
    public bool MoeGroupLimitedMask { get; init; }
    /// <summary>DeepSeek's routers: the experts fall into <see cref="MoeRouterGroups"/> groups (n_group) of which each token
    /// may use the best <see cref="MoeRouterTopGroups"/> (topk_group); 1 and 1 route over every expert at once.</summary>
    public int MoeRouterGroups { get; init; } = 1;
    /// <inheritdoc cref="MoeRouterGroups"/>
    public int MoeRouterTopGroups { get; init; } = 1;
    /// <summary>DeepSeek-V3's router scores with a sigmoid and picks by bias-corrected scores in groups (DeepSeek-V2's takes
    /// a softmax).</summary>
    public bool MoeSigmoidScores { get; init; }
    /// <summary>transformers 5 holds the routed experts as stacked nn.Parameters (MixtralExperts, Qwen MoE, DeepSeek, PhiMoE:
    /// the checkpoint's per-expert linears are converted at load), so PEFT's target_modules — all-linear or a name —
    /// cannot adapt them; only target_parameters can (PEFT issue 3009).</summary>
    public bool RoutedExpertsAreParameters { get; init; }
    /// <summary>The router is an nn.Linear module that PEFT's target_modules can adapt (Llama 4, PhiMoE, DeepSeek-V2);
    /// false where transformers 5 holds it as a parameter of a router module (Mixtral's and Qwen MoE's TopKRouter,
    /// DeepseekV3TopkRouter, GptOssTopKRouter).</summary>
    public bool RouterIsLinearModule { get; init; } = true;

    /// <summary>How the MoE block uses an nn.Linear router, which decides what a LoRA adapter on it does
    /// (<see cref="RouterCall"/>).</summary>
    public RouterCall RouterCall { get; init; } = RouterCall.Module;

    /// <summary>transformers has an SDPA path for the attention (<c>_supports_sdpa</c>). gpt_oss has none: its learned sinks
    /// join the softmax, so transformers falls back to eager attention (an explicit sdpa raises).</summary>
    public bool SupportsSdpa { get; init; } = true;

    /// <summary>gpt_oss: a learned sink logit per head joins each softmax row as one more column, and its eager attention
    /// runs the softmax in the logits' own dtype after subtracting the row maximum.</summary>
    public bool AttentionSinks { get; init; }
    /// <summary>Experts whose MLP each token passes through in the forward: all of them under <see cref="MoeRunsEveryExpert"/>.</summary>
    public int ExpertsRunPerToken => MoeRunsEveryExpert ? NumExperts : ExpertsPerToken;
    /// <summary>Cross-attention decoder layers besides the <see cref="NumLayers"/> self-attention ones (Llama 3.2 Vision):
    /// a text-only step skips them, so they hold weights but no activations or KV cache here; 0 for other models.</summary>
    public int CrossAttentionLayers { get; init; }

    /// <summary>The vision tower whose image inputs the planner plans (<c>--images</c>); null for text models and for
    /// multimodal families whose image inputs are not planned.</summary>
    public VisionEncoder? Vision { get; init; }
    /// <summary>Gate/up width of one routed expert.</summary>
    public int ExpertWidth => ExpertIntermediateSize ?? IntermediateSize;

    /// <summary>Sliding-window attention span in tokens, when the config sets one (Mistral v0.1: 4096); which layers use it: <see cref="SlidingLayers"/>.</summary>
    public int? SlidingWindow { get; init; }

    // ---- Block structure: what a planner needs to count activations and a trainer needs to build the forward pass ----

    /// <summary>
    /// Attention and MLP read the same normalised input and their outputs are added to the residual together
    /// (<c>x + attn(ln(x)) + mlp(ln'(x))</c>): GPT-NeoX <c>use_parallel_residual</c>, Falcon <c>parallel_attn</c>, phi-1.5/2.
    /// False means the usual sequential pre-norm block.
    /// </summary>
    public bool ParallelResidual { get; init; }

    /// <summary>
    /// Norm modules per decoder layer, not counting q/k norms: 2 for Llama/GPT-2/NeoX, 1 for phi-2 and Falcon-7B
    /// (one norm shared by the parallel branches), 2 for Falcon-40B (<c>ln_attn</c>, <c>ln_mlp</c>), 4 for Gemma 2
    /// (pre/post attention, pre/post feed-forward). Each saves its input for backward.
    /// </summary>
    public int NormsPerLayer { get; init; } = 2;

    /// <summary>
    /// The norm is computed by hand in fp32 rather than by a fused kernel (Cohere's CohereLayerNorm: the input cast to fp32,
    /// mean, variance, rsqrt, an fp32 weight): its autograd saves fp32 intermediates as transformers' RMSNorm does, so the
    /// activation model and the allocator trace follow the RMSNorm op list for it. Always true for RMSNorm.
    /// </summary>
    public bool NormUpcastsToFp32 { get; init; }

    /// <summary>The norm runs as one fused LayerNorm op (torch.nn.LayerNorm): saves its input, mean and rstd.</summary>
    public bool FusedLayerNorm => Norm == NormKind.LayerNorm && !NormUpcastsToFp32;

    /// <summary>LayerNorms with a bias (GPT-2, NeoX, Falcon, phi); RMSNorms never have one.</summary>
    public bool NormBias { get; init; }

    /// <summary>Added to a norm weight before scaling: Gemma's RMSNorm computes <c>x̂ · (1 + w)</c>, so 1 there, 0 elsewhere.</summary>
    public double NormWeightOffset { get; init; }

    /// <summary>Token embeddings are multiplied by this before the first layer: √hidden for Gemma, embedding_multiplier for Granite, 1 elsewhere.</summary>
    public double EmbeddingMultiplier { get; init; } = 1.0;

    /// <summary>Gemma and Gemma 2: <c>hidden_states = inputs_embeds * normalizer</c>, a new tensor beside the embedding
    /// output, which the model's forward keeps. Gemma 3 scales inside its embedding module (Gemma3TextScaledWordEmbedding)
    /// and Granite rebinds <c>inputs_embeds</c> to the product: there the lookup's own output dies at once.</summary>
    public bool ScaledEmbeddingIsANewHiddenState { get; init; }

    /// <summary>Granite: each attention and MLP output is multiplied by this before the residual add; 1 elsewhere.</summary>
    public double ResidualMultiplier { get; init; } = 1.0;

    /// <summary>Granite: the attention-score scale itself (replacing <c>1/√HeadDim</c>); null means <c>1/√HeadDim</c>.</summary>
    public double? AttentionMultiplier { get; init; }

    /// <summary>Granite: logits are divided by this; 1 elsewhere.</summary>
    public double LogitsScaling { get; init; } = 1.0;

    /// <summary>Base-model module prefix in checkpoint names (<c>model.</c>, <c>transformer.</c>, <c>gpt_neox.</c>); checkpoints saved from the base model omit it.</summary>
    public string BaseModelPrefix { get; init; } = "model.";

    /// <summary>Gemma 2: attention logits are soft-capped as <c>c · tanh(x / c)</c> (50); null when not capped.</summary>
    public double? AttnLogitSoftcap { get; init; }

    /// <summary>Gemma 2: output logits are soft-capped (30); null when not capped. Adds elementwise work on the full logits.</summary>
    public double? FinalLogitSoftcap { get; init; }

    /// <summary>Attention scale is <c>1/√QueryPreAttnScalar</c> (Gemma 2: 256 or 224); null means <c>1/√HeadDim</c>.</summary>
    public double? QueryPreAttnScalar { get; init; }

    /// <summary>
    /// When <see cref="SlidingWindow"/> is set: per layer, true where that layer attends within the window and false where it
    /// attends globally (Gemma 2: even layers slide; Gemma 3: five of every six). Null means every layer slides (Mistral).
    /// </summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }

    /// <summary>Whether decoder layer <paramref name="layer"/> attends only within <see cref="SlidingWindow"/>.</summary>
    public bool IsSlidingLayer(int layer) => SlidingWindow is not null && (SlidingLayers is null || SlidingLayers[layer]);

    /// <summary>RoPE base of the sliding-window layers when it differs from <see cref="RopeTheta"/> (Gemma 3
    /// <c>rope_local_base_freq</c>, 10,000 against 1,000,000 for global layers); null when every layer uses RopeTheta.</summary>
    public double? LocalRopeTheta { get; init; }

    /// <summary>Dropout probability on attention probabilities (0 for almost every released LLM config).</summary>
    public double AttentionDropout { get; init; }

    /// <summary>Dropout probability on the attention and MLP outputs before the residual add (GPT-2 <c>resid_pdrop</c> 0.1).</summary>
    public double ResidualDropout { get; init; }

    /// <summary>Dropout probability on the embedding output (GPT-2 <c>embd_pdrop</c>).</summary>
    public double EmbeddingDropout { get; init; }

    /// <summary>Standard deviation for weight initialisation (config <c>initializer_range</c>).</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>RoPE frequency scaling from the config (Llama 3.1+: <c>llama3</c>, factor 8); null when none.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Query heads per key/value head (1 for MHA, NumHeads for MQA).</summary>
    public int KvGroups => NumHeads / NumKvHeads;

    /// <summary>Width of the rotated part of each head: <c>HeadDim · PartialRotaryFactor</c> (0 without RoPE).</summary>
    public int RotaryDim => Positions == PositionKind.Rotary ? (int)(HeadDim * PartialRotaryFactor) : 0;

    /// <summary>The cos/sin table pairs the model's forward builds once (Gemma 3: a global and a local one) and their width
    /// (MLA: the rope part of a head); no pairs without RoPE, or for Llama 4's complex frequencies, which are not counted.</summary>
    public (int Pairs, int Dim) RotaryTables
    {
        get
        {
            int dim = Llama4Attention ? 0 : Mla is { } mla ? mla.RopeHeadDim : RotaryDim;
            return dim == 0 ? (0, 0) : (LocalRopeTheta is null ? 1 : 2, dim);
        }
    }

    /// <summary>Every linear projection (LoRA targets), in module order, with in/out widths independent of the storage layout.</summary>
    public IReadOnlyList<LinearLayer> Linears => Facts(Tensors).Linears;

    private static List<LinearLayer> LinearsOf(IReadOnlyList<ParameterTensor> tensors)
    {
        var biased = tensors.Where(t => t.IsBias).Select(t => t.Module).ToHashSet(StringComparer.Ordinal);
        return tensors.Where(t => t.IsLinearWeight)
            .Select(w => new LinearLayer(w.Module, w.InFeatures, w.OutFeatures, biased.Contains(w.Module), w.Conv1D, w.Role, w.Layer, w.Expert))
            .ToList();
    }

    /// <summary>The parameter tensors, with Hugging Face names and shapes, in checkpoint order. Treat the list as immutable once built.</summary>
    public required IReadOnlyList<ParameterTensor> Tensors { get; init; }

    public bool IsMoE => NumExperts > 0;

    /// <summary>See <see cref="ModelSupport"/>.</summary>
    public ModelSupport Support { get; init; } = ModelSupport.Exact;

    /// <summary>A checkpoint read from its headers: the bytes its tensors take as stored (what loading it without a
    /// dtype change puts on the device); null for an architecture built from its config.</summary>
    public long? StoredWeightBytes { get; init; }

    /// <summary>The stored dtypes and how many tensors each (<c>BF16 291, F32 2</c>), for the weights line.</summary>
    public string? StoredDtypes { get; init; }

    /// <summary>What the reader noticed and did not model (config keys the generic path does not read).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The model holds an image encoder's tensors (whether or not its image inputs are planned, <see cref="Vision"/>).</summary>
    public bool HasVisionTower => Tensors.Any(t => t.Role == TensorRole.Vision);

    /// <summary>What a plan of this architecture shows it does not model: the reader's <see cref="Warnings"/> and, for a
    /// model with an image encoder, whether its step is a text step (and whether <c>--images</c> could plan its images) or
    /// one with images, planned from the modeling code.</summary>
    /// <param name="images">Images per sequence of the planned step.</param>
    /// <param name="towerFrozen">The method trains no adapter and keeps the tower frozen (full and freeze finetuning).</param>
    public IReadOnlyList<string> PlanWarnings(int images, bool towerFrozen = false) =>
        !HasVisionTower ? Warnings
        : images > 0 ? [.. Warnings, towerFrozen ? ImageStepNote + FrozenTowerNote : ImageStepNote]
        : [.. Warnings, Vision is null ? TextStepNote : TextStepNote + PlannableImagesNote];

    private const string TextStepNote = "a multimodal model, planned for a text step: the vision tower is held, frozen (adapters the LoRA " +
        "targets put on it get no gradient), and no image runs through it";

    private const string PlannableImagesNote = "; plan image inputs with --images N (images per sequence, their tokens counted in --seq)";

    private const string FrozenTowerNote = "; full and freeze finetuning keep the vision tower frozen (LLaMA-Factory's " +
        "freeze_vision_tower default), so it runs without recording for backward; to train it, plan --vision-tower tower " +
        "(--vision-tower projector trains only the projector), or LoRA with targets that reach it";

    private const string ImageStepNote = "image inputs planned from transformers' modeling and processor code (pixel values, the vision " +
        "tower's blocks, merger or projector, image features), not yet checked against a GPU measurement; the allocator replay does not " +
        "trace the tower, so an assumed reserve stands for fragmentation";

    /// <summary>The checkpoint's own storage format from <c>quantization_config.quant_method</c> when the planner models
    /// it (<c>"mxfp4"</c>: gpt_oss's expert weights; <c>"fp8"</c>: DeepSeek's block-scaled linears); null for a checkpoint in
    /// its plain dtype.</summary>
    public string? CheckpointQuantMethod { get; init; }

    /// <summary>The dtype config.json names (<c>dtype</c> or <c>torch_dtype</c>, at the top or in <c>text_config</c>), e.g.
    /// "float32"; null when it names none. transformers ≥ 5 loads a model in it by default (<c>from_pretrained</c>'s
    /// <c>dtype="auto"</c>, PR #42805); without it, in the checkpoint's own first floating dtype.</summary>
    public string? ConfigDtype { get; init; }

    /// <summary>When config.json names no dtype and a checkpoint sits beside it: the one floating dtype its tensors are
    /// stored in ("float32", "bfloat16", "float16"; null when they mix dtypes or none was read), which transformers ≥ 5
    /// then loads by default.</summary>
    public string? CheckpointFloatDtype { get; init; }

    /// <summary>FP8 checkpoints with <c>weight_block_size</c> [rows, cols]: one fp32 <c>weight_scale_inv</c> per block of
    /// each quantized linear weight (DeepSeek-V3: 128 × 128); null when the checkpoint has no block scales.</summary>
    public (int Rows, int Cols)? Fp8WeightBlock { get; init; }

    /// <summary>A GPTQ, AWQ or bitsandbytes checkpoint's <c>quantization_config</c>: which linears it stores quantized and in
    /// which tensors (<see cref="QuantizedCheckpoint.Stored"/>); null for a checkpoint in its plain dtype, or one whose family
    /// reads its own format (<see cref="CheckpointQuantMethod"/>).</summary>
    public QuantizedCheckpoint? Quantization { get; init; }

    /// <summary>The linear weights an FP8 checkpoint stores in 8 bits: every nn.Linear but the head (transformers'
    /// FineGrainedFP8 quantizer skips lm_head) and the router, which DeepSeek keeps as a bf16 parameter.</summary>
    public IEnumerable<ParameterTensor> Fp8Linears => Tensors.Where(t => t.IsLinearWeight && t.Role is not (TensorRole.LmHead or TensorRole.Router));

    /// <summary>Elements transformers keeps in fp32 whatever the dtype (<c>_keep_in_fp32_modules_strict</c>: DeepSeek-V3's
    /// <c>e_score_correction_bias</c>).</summary>
    public long Fp32Elements => Facts(Tensors).Fp32Elements;

    /// <summary>Bytes of the fp32 block scales of <see cref="Fp8Linears"/> (<c>⌈rows/128⌉ · ⌈cols/128⌉ · 4</c> each).</summary>
    public long Fp8ScaleBytes => Fp8Linears.Sum(t => Fp8BlockScaleBytes(t.Shape[0], t.Shape[1]));

    /// <summary>The fp32 block scales (<c>weight_scale_inv</c>) of one [rows, columns] weight stored in block-scaled FP8
    /// (<c>⌈rows/block⌉ · ⌈columns/block⌉ · 4</c>); 0 for a checkpoint without FP8 blocks.</summary>
    public long Fp8BlockScaleBytes(long rows, long columns) => Fp8WeightBlock is not { } b ? 0
        : (rows + b.Rows - 1) / b.Rows * ((columns + b.Cols - 1) / b.Cols) * 4L;
    public int QueryWidth => NumHeads * HeadDim;
    public int KvWidth => NumKvHeads * HeadDim;

    /// <summary>Exact number of parameters (tied embeddings counted once).</summary>
    public long ParameterCount => Facts(Tensors).Parameters;

    // Derived facts depend only on the tensor list, so they are cached per list instance (outside the record's fields,
    // which keeps record equality and `with` copies unaffected). A plan reads them many times; a 405B list has 1,137 tensors.
    private sealed record TensorFacts(long Parameters, IReadOnlyList<LinearLayer> Linears, long Fp32Elements);

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IReadOnlyList<ParameterTensor>, TensorFacts> FactsCache = new();

    private static TensorFacts Facts(IReadOnlyList<ParameterTensor> tensors) =>
        FactsCache.GetValue(tensors, t => new TensorFacts(t.Sum(x => x.Elements), LinearsOf(t).AsReadOnly(),
            // Read by every inference ledger: once per tensor list, not once per plan.
            t.Where(x => x.Name.EndsWith(".e_score_correction_bias", StringComparison.Ordinal)).Sum(x => x.Elements)));

    /// <summary>Parameters one token touches: for MoE only <see cref="ExpertsPerToken"/> routed experts per sparse layer
    /// (routers, shared experts and dense layers carry no expert index, so they always count) and no image encoder (a
    /// text token never runs it; Llama 4's card counts "17B active" so).</summary>
    public long ActiveParameterCount =>
        IsMoE
            ? Tensors.Where(t => (t.Expert is null || t.Expert < ExpertsPerToken) && t.Role != TensorRole.Vision)
                .Sum(t => t.StackedExperts > 0 ? t.Elements / t.StackedExperts * ExpertsPerToken : t.Elements)
            : ParameterCount;

    /// <summary>
    /// K and V bytes one token adds to the cache of every layer: 2 · layers · kv_heads · head_dim · bytes (kipply,
    /// GQA-aware), as long as no layer has dropped tokens out of its window (see <see cref="KvCacheBytes"/>).
    /// </summary>
    public long KvBytesPerToken(double bytesPerElement) =>
        (long)Math.Round((double)NumLayers * KvElementsPerTokenPerLayer * bytesPerElement);

    /// <summary>Decoder layers whose cache keeps only the window: every layer when <see cref="SlidingWindow"/> is set
    /// without <see cref="SlidingLayers"/> (transformers' DynamicCache makes every layer a DynamicSlidingWindowLayer when
    /// the config has a sliding_window and no layer_types: Mistral v0.1, Phi-3-mini), else those marked sliding.</summary>
    public int SlidingLayerCount => SlidingWindow is null ? 0 : SlidingLayers?.Count(s => s) ?? NumLayers;

    /// <summary>
    /// Bytes of every layer's K and V for <paramref name="batch"/> sequences when full-attention layers hold
    /// <paramref name="fullTokens"/> tokens and sliding-window layers <paramref name="slidingTokens"/> (what a sliding
    /// layer holds depends on the cache: <see cref="SlidingCacheTokens"/>).
    /// </summary>
    public double KvCacheBytes(double bytesPerElement, long batch, long fullTokens, long slidingTokens)
    {
        int sliding = SlidingLayerCount;
        return KvElementsPerTokenPerLayer * bytesPerElement * batch * ((double)(NumLayers - sliding) * fullTokens + (double)sliding * slidingTokens);
    }

    /// <summary>
    /// Tokens one sliding-window layer's cache holds after it has seen <paramref name="seen"/> tokens. transformers
    /// (cache_utils.py, 4.56+): a DynamicSlidingWindowLayer concatenates the new states to the kept ones and keeps the last
    /// <c>sliding_window − 1</c> as a <em>view</em> of that concatenation, so after the prefill the whole prompt's storage
    /// stays alive and each decode step allocates a fresh <c>min(seen, window)</c>-token tensor; a StaticSlidingWindowLayer
    /// allocates <c>min(window, max_cache_len)</c> tokens at its first update.
    /// </summary>
    public long SlidingCacheTokens(long seen, bool decoded, bool staticCache, long maxCacheLen)
    {
        if (SlidingWindow is not { } w) return staticCache ? maxCacheLen : seen;
        if (staticCache) return Math.Min(w, maxCacheLen);
        return decoded ? Math.Min(seen, w) : seen;
    }
}

/// <summary>MoE forwards whose training activations are modelled tensor by tensor (checked against autograd by
/// bench/interop/moe_saved.py).</summary>
public enum MoeTrainingLoop
{
    /// <summary>Not modelled tensor by tensor: the generic routed-MLP count.</summary>
    Other,
    /// <summary>Softmax, top-k and the stacked experts (MixtralSparseMoeBlock, Qwen2/3 MoE): transformers 5's eager loop
    /// with <c>index_add_</c>, or grouped_mm (<see cref="Memory.ExpertsBackend"/>).</summary>
    TopKExperts,
    /// <summary>GptOssMLP: top-k of the biased logits, softmax over them, GptOssExperts' loop over stacked weights.</summary>
    GptOss,
    /// <summary>DeepseekV3MoE (and DeepseekV2Moe): a router linear on fp32 copies (V3 sigmoid with grouped top-k, V2
    /// softmax), the stacked experts through the experts backend, and shared experts on every token.</summary>
    DeepseekV3,
    /// <summary>Llama4TextMoe: sigmoid scores of the top-k logits, every token through every expert's bmm scaled by its
    /// score, and the shared expert.</summary>
    Llama4,
    /// <summary>PhimoeSparseMoeBlock: sparsemixer's two sampled picks (masked softmax, MultiplierProcessor) and Mixtral's
    /// loop over experts.</summary>
    Phimoe,
}

/// <summary>
/// Multi-head latent attention (DeepSeek-V2/V3): the query through a <see cref="QueryRank"/>-wide latent (q_a_proj →
/// q_a_layernorm → q_b_proj; null: one q_proj), keys and values through a <see cref="KvRank"/>-wide latent
/// (kv_a_proj_with_mqa, whose output also carries the <see cref="RopeHeadDim"/>-wide shared rotary key, → kv_a_layernorm →
/// kv_b_proj into <see cref="NopeHeadDim"/> + <see cref="ValueHeadDim"/> per head).
/// </summary>
public sealed record LatentAttention(int? QueryRank, int KvRank, int NopeHeadDim, int RopeHeadDim, int ValueHeadDim)
{
    /// <summary>Query and key width per head: the non-rotary and the rotary parts concatenated.</summary>
    public int QkHeadDim => NopeHeadDim + RopeHeadDim;
}

/// <summary>
/// How a MoE block uses its nn.Linear router (transformers 5), which decides what PEFT's LoRA layer on it does: the
/// layer replaces the module, and its forward adds <c>lora_B(lora_A(dropout(x))) · scaling</c> to the base layer's output.
/// </summary>
public enum RouterCall
{
    /// <summary>Called as a module that returns its logits (PhimoeRouter): the adapter's branch runs and trains.</summary>
    Module,
    /// <summary>The block reads <c>gate.weight</c> itself (DeepseekV2Moe: <c>F.linear(x.float(), self.gate.weight.float())</c>):
    /// the adapter is built but never runs, so it gets no gradient and AdamW no state for it.</summary>
    WeightRead,
    /// <summary>Called as a module that returns a tuple (Llama4Router: <c>(router_scores, router_logits)</c>): LoRA's
    /// forward reads <c>result.dtype</c> of the tuple and fails at the first step.</summary>
    ReturnsTuple,
}
