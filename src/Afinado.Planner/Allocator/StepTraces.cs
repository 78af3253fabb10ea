using Afinado.Planner.Architecture;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Allocator;

/// <summary>
/// The allocator events of a job, op by op, for decoder-only transformers in transformers' eager PyTorch code (the
/// op list the ledger's activation model is derived from): the model built on the GPU, then two training iterations
/// (forward, loss, backward, optimizer step, <c>zero_grad(set_to_none=True)</c>; AdamW's state is created lazily in the
/// first) or, for inference, a prefill and decode steps with transformers' DynamicCache (the cache grows by
/// <c>torch.cat</c>, so every step allocates a cache one token longer and frees the old one).
/// </summary>
public static class StepTraces
{
    /// <summary>Decode steps traced one by one; longer generations are traced from the last of them (the cache's
    /// growth pattern repeats step after step).</summary>
    public const int MaxTracedDecodeSteps = 64;

    /// <summary>The trace of <paramref name="job"/> on a GPU.</summary>
    public static AllocationTrace For(ModelProfile profile, Job job) => Record(profile, job, new AutogradTape(new AllocationTrace()));

    /// <summary>The same trace in this thread's scratch buffers: valid until the thread's next call, for a replay that
    /// reads it at once (a plan replays a step or more; fresh lists of ~30,000 events cost more than building them).</summary>
    internal static AllocationTrace ForReplay(ModelProfile profile, Job job)
    {
        var tape = _scratch ??= new AutogradTape(new AllocationTrace());
        tape.Clear();
        return Record(profile, job, tape);
    }

    [ThreadStatic] private static AutogradTape? _scratch;

    private static AllocationTrace Record(ModelProfile profile, Job job, AutogradTape tape)
    {
        // The stack's cuBLAS/cuBLASLt workspaces: taken from the allocator at the first matmul, kept for the process's life.
        foreach (long w in job.Stack.WorkspaceAllocations) tape.New(w);
        var b = new DecoderTrace(profile, job, tape);
        if (job.Rule is LearningRule.Es or LearningRule.EsDirect) b.EsStep();
        else if (job.IsTraining) b.Train();
        else b.Infer();
        return tape.Trace;
    }
}

/// <summary>One decoder-only model's forward/backward/optimizer as allocator events (see <see cref="StepTraces"/>).</summary>
internal sealed partial class DecoderTrace
{
    private readonly ModelProfile _p;
    private readonly ModelArchitecture _a;
    private readonly Job _job;
    private readonly AutogradTape _t;
    private readonly bool _amp;
    /// <summary>prepare_model_for_kbit_training: fp32 residual stream and activations; bitsandbytes layers cast their
    /// input to the compute dtype and their output back to the input's dtype; attention runs in 16 bits.</summary>
    private readonly bool _kbit;
    /// <summary>Bytes of the 16-bit compute dtype (the dequantized weights, the attention kernel under kbit prep).</summary>
    private readonly int _c16;
    /// <summary>Bytes per element: matmul output (c), parameters (pw), the residual stream (r), LoRA adapters (ad).</summary>
    private readonly int _c, _pw, _r, _ad;
    private long _batch, _seq;
    /// <summary>Chunked output (torchtune) with --keep-output: the chunks' logits, released after backward.</summary>
    private readonly List<int> _heldChunks = [];
    private readonly double _loraDropout;
    private readonly List<Param> _params = [];
    private readonly Param _embed, _head, _finalNorm;
    private readonly LayerParams[] _layers;
    /// <summary>Autocast's cache of 16-bit copies of trainable leaf weights: cleared when the forward's autocast exits.</summary>
    private readonly Dictionary<Param, int> _castCache = [];
    private int _mask = -1;

    private sealed class LinearParams(LinearUse use, Param weight, Param? loraA, Param? loraB)
    {
        public LinearUse Use { get; } = use;
        public Param Weight { get; } = weight;
        public Param? LoraA { get; } = loraA;
        public Param? LoraB { get; } = loraB;
    }

    private sealed class LayerParams
    {
        public required LayerProfile Profile { get; init; }
        public required Param Norm1 { get; init; }
        public required Param? Norm2 { get; init; }
        /// <summary>Gemma 2/3's post_attention_layernorm and post_feedforward_layernorm, on the sublayers' outputs.</summary>
        public Param? PostAttentionNorm { get; init; }
        public Param? PostFeedforwardNorm { get; init; }
        /// <summary>Qwen 3, Gemma 3, OLMo 2: the q and k norms (registered after o_proj).</summary>
        public required Param? QNorm { get; init; }
        public required Param? KNorm { get; init; }
        public required LinearParams[] AttnIn { get; init; }
        public required LinearParams? AttnOut { get; init; }
        public required LinearParams[] MlpIn { get; init; }
        public required LinearParams? MlpDown { get; init; }
        /// <summary>A sparse layer's router and stacked experts (see DecoderTrace.Moe.cs); null in a dense layer.</summary>
        public required MoeParams? Moe { get; init; }
        /// <summary>Multi-head latent attention: q_a_layernorm (null without a query rank) and kv_a_layernorm.</summary>
        public Param? QLatentNorm { get; init; }
        public Param? KvLatentNorm { get; init; }
    }

    public DecoderTrace(ModelProfile profile, Job job, AutogradTape tape)
    {
        _p = profile;
        _a = profile.Architecture;
        _job = job;
        _t = tape;
        _t.GradReady = job.OptimizerInBackward && job.IsTraining ? StepInBackward : null;
        _amp = job.Precision.IsAmp();
        _kbit = job.KbitPrep && job.IsTraining && job.ResolvedWeightsDtype.IsQuantized();
        _c16 = job.Precision.ComputeBytes();
        _c = _kbit ? 4 : job.Precision.ComputeBytes();
        bool training = job.IsTraining;
        var w = job.ResolvedWeightsDtype;
        _pw = training ? (job.Precision is Precision.Fp32 or Precision.AmpBf16 or Precision.AmpFp16 ? 4 : 2) : Math.Max(1, (int)Math.Round(w.Bytes()));
        // The residual stream's dtype is the embedding output's, as the ledger takes it: fp32 under AMP when the table is
        // held in fp32 (full finetuning), 16-bit when a LoRA base is loaded in 16 bits.
        _r = (int)TrainingLedger.ResidualBytes(profile, job, _c);
        _ad = training && job.Method.UsesAdapters() ? (int)job.ResolvedAdapterDtype.Bytes() : _c;
        _batch = job.Batch;
        _seq = job.Seq;
        _loraDropout = training ? profile.Selection.Lora?.Dropout ?? 0 : 0;
        long h = _a.HiddenSize, rank = profile.Selection.Lora?.Rank ?? 0;

        // Parameters in model.parameters() order: embedding, each layer (attention, MLP, norms), final norm, head.
        _embed = Add(_a.VocabSize * h, training && profile.EmbeddingTrainable);
        _layers = new LayerParams[_a.NumLayers];
        var others = OtherParameters(profile, training);
        var qkNorm = Shape(_a).QkNorm;
        for (int i = 0; i < _layers.Length; i++)
        {
            var L = profile.Layers[i];
            LinearParams Lin(LinearUse u)
            {
                bool frozen = !(u.Trainable && training);
                // A GPTQ/AWQ/bitsandbytes checkpoint's linear holds the tensors its library registers (codes, scales, zeros,
                // g_idx, bias), whose exact bytes the ledger counts too; one block stands for them.
                long? stored = frozen && _job.StoredFormat is not null && u.CheckpointBytes > 0 ? u.CheckpointBytes
                    : frozen && Fp8Checkpoint ? u.In * u.Out + _a.Fp8BlockScaleBytes(u.Out, u.In) : null;
                var weight = Add(u.In * u.Out, !frozen, storage: frozen ? w.Bytes() : null, storedBytes: stored);
                Param? la = null, lb = null;
                if (u.Lora && training)
                {
                    la = Add(rank * u.In, true, _ad);
                    lb = Add(u.Out * rank, true, _ad);
                    _adapters.Add(la);
                    _adapters.Add(lb);
                }
                return new LinearParams(u, weight, la, lb);
            }
            var attnIn = L.AttnIn.Select(Lin).ToArray();
            // MLA's latent norms (registered between the a and b projections; small blocks either way).
            var qLatentNorm = _a.Mla is { QueryRank: { } qRank } ? Add(qRank, training && L.QLatentNormTrainable) : null;
            var kvLatentNorm = _a.Mla is { } mla ? Add(mla.KvRank, training && L.KvLatentNormTrainable) : null;
            var attnOut = L.AttnOut is { } o ? Lin(o) : null;
            var qNorm = qkNorm is { } qk ? Add(qk.Q, training && L.QkNormTrainable) : null;
            var kNorm = qkNorm is { } qk2 ? Add(qk2.K, training && L.QkNormTrainable) : null;
            // A sparse block registers its router and experts before a shared expert (Qwen2MoeSparseMoeBlock.__init__).
            var moe = L.Router is { } router ? AddMoe(i, L, router, training) : null;
            var mlpIn = L.MlpIn.Select(Lin).ToArray();
            var mlpDown = L.MlpDown is { } d ? Lin(d) : null;
            if (moe is not null && L.SharedExpertGate is { } gate) moe.SharedGate = Lin(gate);
            _layers[i] = new LayerParams
            {
                Profile = L, AttnIn = attnIn, AttnOut = attnOut, MlpIn = mlpIn, MlpDown = mlpDown, Moe = moe, QNorm = qNorm, KNorm = kNorm,
                QLatentNorm = qLatentNorm, KvLatentNorm = kvLatentNorm,
                Norm1 = Add(h, training && L.Norm1Trainable),
                Norm2 = L.NormCount >= 2 ? Add(h, training && L.Norm2Trainable) : null,
                PostAttentionNorm = _a.NormsPerLayer == 4 ? Add(h, training && L.Norm2Trainable) : null,
                PostFeedforwardNorm = _a.NormsPerLayer == 4 ? Add(h, training && L.Norm2Trainable) : null,
            };
            // Small blocks for the most part, here after the layer's weights.
            foreach (var (elements, trainable) in others[i]) Add(elements, trainable);
        }
        _finalNorm = Add(h, training && profile.FinalNormTrainable);
        foreach (var (elements, trainable) in others[^1]) Add(elements, trainable);
        _head = _a.TiedEmbeddings ? _embed : Add(_a.VocabSize * h, training && profile.HeadTrainable);
        // A vision tower's parameters (Gemma 3) sit in memory, frozen, though a text step runs nothing through them; a
        // quantized load (bitsandbytes, not a stored checkpoint) packs its nn.Linear weights as it packs the text model's.
        if (profile.VisionFrozen > 0)
        {
            long packed = w.IsQuantized() && job.StoredFormat is null ? profile.VisionQuantizable : 0;
            if (packed > 0) Add(packed, false, storage: w.Bytes());
            Add(profile.VisionFrozen - packed, false);
        }
        // So do the LoRA adapters all-linear puts on its linears, one tensor per factor (small-pool blocks each), the last
        // parameters: they require grad but get none, so no optimizer step reaches them (ES perturbs and steps them).
        _visionAdaptersFrom = _params.Count;
        if (training && profile.Selection.VisionAdapterParameters > 0)
            foreach (var adapter in profile.Selection.Adapters.Where(a => a.Base.VisionLinear))
                _adapters.Add(Add(adapter.Elements, true, _ad));
    }

    /// <summary>A parameter: trainable ones are stored in the parameter dtype; frozen ones in the weights dtype (quantized
    /// linears in their packed size; other frozen tensors stay 16-bit when the linears are quantized).</summary>
    private Param Add(long elements, bool trainable, int? bytes = null, double? storage = null, long? storedBytes = null)
    {
        var w = _job.ResolvedWeightsDtype;
        double store = storage ?? (trainable ? bytes ?? _pw : w.IsQuantized() ? (_kbit ? 4 : 2) : (_job.IsTraining ? Math.Min(_pw, w.Bytes()) : w.Bytes()));
        if (bytes is not null) store = bytes.Value;
        // Dequantized per matmul: bitsandbytes / GPTQ / AWQ weights, not an FP8 checkpoint's FP8Linear (block-wise kernel).
        bool dequantized = w.IsQuantized() && storage is not null && !trainable && !Fp8Checkpoint;
        var p = new Param(elements, bytes ?? _pw, trainable, storedBytes ?? (long)Math.Ceiling(elements * store), dequantized);
        _params.Add(p);
        return p;
    }

    /// <summary>Inference on a checkpoint stored in block-scaled FP8 (DeepSeek-V3): transformers' FineGrainedFP8 loads
    /// every linear as FP8Linear and the fused expert stacks as FP8Expert, e4m3 values with an fp32 scale per block, and
    /// multiplies block-wise without a dequantized copy (as <see cref="Memory.InferenceLedger"/> counts them).</summary>
    private bool Fp8Checkpoint => !_job.IsTraining && _a.Fp8WeightBlock is not null && _job.ResolvedWeightsDtype == DType.Fp8;

    private long T => _batch * _seq;

    /// <summary>
    /// Parameters the layer code below never reads by name, by layer (last slot: outside the layers): biases (q/k/v, MLP,
    /// LayerNorm), norms beyond the two a layer runs (Gemma 2/3's pre/post-feedforward norms) and learned position
    /// embeddings. They are allocated all the same, so the build holds every parameter. A quantized checkpoint's linears
    /// count their biases in their stored bytes, so only the norms' remain there.
    /// </summary>
    private List<(long Elements, bool Trainable)>[] OtherParameters(ModelProfile profile, bool training)
    {
        var byLayer = new List<(long, bool)>[_a.NumLayers + 1];
        for (int i = 0; i < byLayer.Length; i++) byLayer[i] = [];
        var tensors = _a.Tensors;
        foreach (var (index, slot, linearBias) in Shape(_a).Others)
            if (_job.StoredFormat is null || !linearBias)
                byLayer[slot].Add((tensors[index].Elements, training && profile.Selection.IsTrainableAt(index)));
        return byLayer;
    }

    /// <summary>What the trace needs from an architecture's tensor list beyond the profile, found once per architecture (a
    /// search replays one model many times).</summary>
    private sealed record TraceShape((int Index, int Slot, bool LinearBias)[] Others, (long Q, long K)? QkNorm);

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ModelArchitecture, TraceShape> Shapes = new();

    private static TraceShape Shape(ModelArchitecture a) => Shapes.GetValue(a, static a =>
    {
        var tensors = a.Tensors;
        // Checkpoints that name them otherwise (phi's q_layernorm) have no q/k norm here: one more norm of the layer.
        var qNorm = a.QkNorm ? tensors.FirstOrDefault(t => t.Role == TensorRole.Norm && !t.IsBias && QkNormKind(t) == 'q') : null;
        var kNorm = a.QkNorm ? tensors.FirstOrDefault(t => t.Role == TensorRole.Norm && !t.IsBias && QkNormKind(t) == 'k') : null;
        (long Q, long K)? qkNorm = qNorm is not null && kNorm is not null ? (qNorm.Elements, kNorm.Elements) : null;
        var others = new List<(int, int, bool)>();
        var normsSeen = new int[a.NumLayers];
        for (int ti = 0; ti < tensors.Count; ti++)
        {
            var t = tensors[ti];
            int slot = t.Layer is int l && l >= 0 && l < a.NumLayers ? l : a.NumLayers;
            bool other = t.IsBias ? t.Role != TensorRole.Vision
                : t.Role is TensorRole.PositionEmbedding or TensorRole.AttnSink
                // DeepSeek-V3's e_score_correction_bias: a per-expert vector beside the router's weight.
                || (t.Role == TensorRole.Router && t.Shape.Length == 1)
                || (t.Role == TensorRole.Norm && slot < a.NumLayers && !(qkNorm is not null && QkNormKind(t) is not null)
                    && !(a.Mla is not null && IsLatentNorm(t)) && ++normsSeen[slot] > Math.Max(2, a.NormsPerLayer));
            if (other) others.Add((ti, slot, t.IsBias && t.Role != TensorRole.Norm));
        }
        return new TraceShape([.. others], qkNorm);
    });

    private static bool IsLatentNorm(ParameterTensor t) =>
        t.Module.EndsWith(".q_a_layernorm", StringComparison.Ordinal) || t.Module.EndsWith(".kv_a_layernorm", StringComparison.Ordinal);

    private static char? QkNormKind(ParameterTensor t) =>
        t.Module.EndsWith(".q_norm", StringComparison.Ordinal) ? 'q' : t.Module.EndsWith(".k_norm", StringComparison.Ordinal) ? 'k' : null;


    // ---------------------------------------------------------------------------------------------------------------
    // Jobs

    public void Train()
    {
        Build();
        _t.Trace.StartIteration(0);
        int ids = _t.New(8 * T); // input ids (= labels), int64
        for (int it = 1; it <= 2; it++)
        {
            _t.Trace.StartIteration(it);
            // Gradient accumulation: the first micro-batch creates the gradients, every later one adds into them with the
            // same allocations, so two are traced (a 256-step accumulation would otherwise trace 256 passes).
            for (int micro = 0; micro < Math.Clamp(_job.GradAccumulation, 1, 2); micro++)
            {
                _t.Recording = true;
                int loss = ForwardWithLoss(ids, out int heldOutput);
                _t.Backward(loss);
                ReleaseRotaryTables();
                _t.Drop(loss);
                // --keep-output: the loop's `output` (its logits) is released only after backward.
                if (heldOutput >= 0) _t.Drop(heldOutput);
                foreach (int chunk in _heldChunks) _t.Drop(chunk);
                _heldChunks.Clear();
            }
            OptimizerStep();
            foreach (var p in _params) ZeroGrad(p);
        }
    }

    public void Infer()
    {
        Build();
        _t.Trace.StartIteration(0);
        _t.Recording = false;
        long prompt = _job.Seq, context = _job.ContextTokens;
        int ids = _t.New(8 * _batch * prompt);
        var cache = new int[_a.NumLayers * 2];
        _cacheTokens = new long[cache.Length];
        if (context <= prompt)
        {
            // Two identical prefills; the second is the one measured.
            for (int it = 1; it <= 2; it++)
            {
                _t.Trace.StartIteration(it);
                Array.Fill(cache, -1);
                Array.Clear(_cacheTokens);
                int logits = Forward(ids, prompt, cache, cachedTokens: 0);
                _t.Drop(logits);
                foreach (int k in cache) _t.Drop(k);
            }
            return;
        }
        Array.Fill(cache, -1);
        _t.Drop(Forward(ids, prompt, cache, cachedTokens: 0));
        long steps = context - prompt;
        long first = Math.Max(0, steps - StepTraces.MaxTracedDecodeSteps);
        if (first > 0 && _job.KvCache == KvCacheKind.Dynamic)
        {
            // Skip ahead: the cache as it stands `first` steps later, one tensor per layer and K/V (a sliding layer's
            // last step allocated at most its window and keeps a view of all but one of those tokens).
            for (int i = 0; i < cache.Length; i++)
            {
                long seen = prompt + first;
                bool sliding = _a.IsSlidingLayer(i / 2);
                long held = sliding ? _a.SlidingCacheTokens(seen, decoded: true, staticCache: false, 0) : seen;
                int grown = _t.New((long)Math.Ceiling(_job.ResolvedKvDtype.Bytes() * _batch * held * _a.KvWidth));
                _t.Drop(cache[i]);
                cache[i] = grown;
                _cacheTokens[i] = sliding ? Math.Min(seen, _a.SlidingWindow!.Value - 1L) : seen;
            }
        }
        int token = _t.New(8 * _batch);
        for (long s = first; s < steps; s++)
        {
            // The last two steps are the measured iterations (bench/gpu/measure.py measures the second decode step).
            if (s >= steps - 2) _t.Trace.StartIteration((int)(s - (steps - 2)) + 1);
            int logits = Forward(token, 1, cache, cachedTokens: prompt + s);
            _t.Drop(logits);
        }
        _t.Drop(token);
    }

    /// <summary>The model built on the device (<c>from_config</c> under a device context, or loaded weights): every
    /// parameter allocated in order; PEFT adds its adapters after the base, walking named_modules(), where a multimodal
    /// model's vision tower comes before its text model.</summary>
    private void Build()
    {
        foreach (var p in _params.Where(p => !_adapters.Contains(p))) _t.New(p.StorageBytes);
        // A tied head is built as its own nn.Linear (LlamaForCausalLM.__init__) and replaced by the embedding's weight
        // in post_init's tie_weights: its block is freed and stays cached.
        if (_a.TiedEmbeddings) _t.Drop(_t.New(_embed.StorageBytes));
        foreach (var p in _params.Skip(_visionAdaptersFrom)) _t.New(p.StorageBytes);
        foreach (var p in _params.Take(_visionAdaptersFrom).Where(_adapters.Contains)) _t.New(p.StorageBytes);
    }

    private readonly HashSet<Param> _adapters = [];
    // Where the vision tower's adapters begin among the parameters (they are the last; the count when there are none).
    private readonly int _visionAdaptersFrom;

    // ---------------------------------------------------------------------------------------------------------------
    // Forward

    private int ForwardWithLoss(int ids, out int heldOutput)
    {
        heldOutput = -1;
        int x = Embedding(ids, T);
        ModelForwardStart(_r);
        for (int i = 0; i < _layers.Length; i++) x = LayerOrCheckpoint(i, x);
        var (y, yb) = Norm(x, _r, _finalNorm);
        _t.Drop(x);
        ModelForwardEnd();
        // The model's forward returns here: its sliding-window mask dies (the eager causal mask is counted to the loss).
        if (_slidingMask >= 0) { _t.Drop(_slidingMask); _slidingMask = -1; }
        var head = new LinearParams(new LinearUse(_a.HiddenSize, _a.VocabSize, _head.Trainable, false), _head, null, null);
        if (_job.LossChunks > 1) return ChunkedOutputLoss(y, yb, head);
        int logits = Linear(y, yb, head, out int lb);
        _t.Drop(y);
        // Gemma2ForCausalLM's final soft-cap on the logits (the output then holds the capped logits).
        if (_a.FinalLogitSoftcap is not null) logits = SoftCap(logits, lb * T * _a.VocabSize);
        // transformers ForCausalLMLoss: logits.float(), then cross_entropy (log_softmax saved in fp32, nll_loss).
        // Before 4.46 (--legacy-loss) the model itself returned logits.float() and the loss copied the shifted slice.
        long tv = T * _a.VocabSize;
        int lf = Float32(logits, lb, tv);
        int output = logits;
        if (_job.LegacyLoss)
        {
            // The output now holds the fp32 logits; the 16-bit ones die with the model's forward.
            _t.Hold(lf);
            _t.Drop(logits);
            output = lf;
            int shifted = _t.New(4 * tv);
            _t.Op(shifted, [lf]);
            _t.Drop(lf);
            lf = shifted;
        }
        int loss = CrossEntropy(lf, tv);
        // The output object (holding the logits) dies when the forward's statement ends, with autocast's cache —
        // unless the loop keeps it through backward.
        if (_job.KeepOutput) heldOutput = output;
        else _t.Drop(output);
        EndOfForward();
        return loss;
    }

    /// <summary><c>logits.float()</c>: a new fp32 copy of 16-bit logits, or the fp32 logits themselves (held).</summary>
    private int Float32(int logits, int bytes, long tv)
    {
        if (bytes >= 4) return _t.Hold(logits);
        int lf = _t.New(4 * tv);
        _t.Op(lf, [logits]);
        return lf;
    }

    /// <summary>cross_entropy on fp32 logits (released here): the log-softmax, saved for backward, and the nll loss.</summary>
    private int CrossEntropy(int lf, long tv)
    {
        int ls = _t.New(4 * tv);
        _t.Op(ls, [lf], saved: [ls]);
        _t.Drop(lf);
        int loss = _t.New(4);
        _t.Op(loss, [ls]);
        _t.Drop(ls);
        return loss;
    }

    /// <summary>The step's forward statement ends: autocast's weight cache and the eager causal mask are released.</summary>
    private void EndOfForward()
    {
        ClearCastCache();
        if (_mask >= 0) { _t.Drop(_mask); _mask = -1; }
    }

    /// <summary>
    /// torchtune's chunked output and CEWithChunkedOutputLoss (eager): the head runs on each of
    /// <c>h.chunk(num_output_chunks, dim=1)</c> (views of the normed hidden state, so they keep all of it) and every
    /// chunk's 16-bit logits are kept in the model's output list; then, chunk by chunk, <c>cross_entropy(logits.float())</c>
    /// — the fp32 copy lives while its log-softmax (saved) is computed — summed into the loss. The recipe deletes the
    /// logits before backward, unless the loop keeps its output.
    /// </summary>
    private int ChunkedOutputLoss(int y, int yb, LinearParams head)
    {
        long seq = _seq, size = (seq + _job.LossChunks - 1) / _job.LossChunks;
        var chunks = new List<(int Logits, int Bytes, long Tokens)>();
        for (long start = 0; start < seq; start += size)
        {
            // torch.chunk: chunks of ⌈s / n⌉ positions, the last one shorter.
            _seq = Math.Min(size, seq - start);
            int logits = Linear(y, yb, head, out int lb);
            chunks.Add((logits, lb, T));
            _seq = seq;
        }
        _t.Drop(y);
        int loss = -1;
        foreach (var (logits, lb, tokens) in chunks)
        {
            long tv = tokens * _a.VocabSize;
            int part = CrossEntropy(Float32(logits, lb, tv), tv);
            if (loss < 0) loss = part;
            else
            {
                int sum = _t.New(4);
                _t.Op(sum, [loss, part]);
                _t.Drop(loss, part);
                loss = sum;
            }
        }
        // The output list: dropped now (`del logits`), or (--keep-output) after backward with the rest of the output.
        foreach (var chunk in chunks)
            if (_job.KeepOutput) _heldChunks.Add(chunk.Logits);
            else _t.Drop(chunk.Logits);
        EndOfForward();
        return loss;
    }

    private int Forward(int ids, long tokens, int[] cache, long cachedTokens)
    {
        long savedSeq = _seq;
        _seq = tokens;
        int x = Embedding(ids, _batch * tokens);
        ModelForwardStart(_c);
        for (int i = 0; i < _layers.Length; i++)
        {
            int next = Layer(i, x, cache, cachedTokens);
            _t.Drop(x);
            x = next;
        }
        var (y, _) = Norm(x, _c, _finalNorm);
        _t.Drop(x);
        ModelForwardEnd();
        // generate(): logits for the last position only (logits_to_keep=1).
        int logits = _t.New(_c * _batch * _a.VocabSize);
        _t.Drop(y);
        DropForwardMasks();
        _seq = savedSeq;
        return logits;
    }

    /// <summary>The model forward's locals that live until it returns (LlamaModel.forward and the families built on it):
    /// <c>inputs_embeds</c> (the embedding output, still bound after <c>hidden_states</c> moves on), GPT-2's learned
    /// <c>position_embeds</c>, <c>cache_position</c> (<c>torch.arange</c>, int64) and <c>position_embeddings</c>, the rotary
    /// tables.</summary>
    private int _embeds = -1, _positionEmbeds = -1, _cachePosition = -1;
    private readonly List<(int Cos, int Sin)> _rope = [];

    /// <summary>
    /// LlamaModel.forward before its layers: <c>cache_position = torch.arange(s)</c>, then <c>rotary_emb(hidden_states,
    /// position_ids)</c> per rotary embedding (Gemma 3's local one too). LlamaRotaryEmbedding.forward works in fp32 with
    /// position_ids of shape (1, s), so each table is (1, s, rotary dim) whatever the batch: <c>position_ids.float()</c>,
    /// <c>freqs = inv_freq @ positions</c>, <c>emb = cat(freqs, freqs)</c>, <c>emb.cos() * attention_scaling</c> (two
    /// tensors, the first a temporary), the same for sin, then <c>cos.to(x.dtype)</c> and <c>sin.to(x.dtype)</c> (no copy
    /// when x is fp32); its fp32 locals die when it returns. Between the two, an eager prefill's <c>create_causal_mask</c>:
    /// sdpa_mask's boolean (1, 1, s, s), then <c>torch.where</c> into the dtype, (b, 1, s, s), kept until the forward
    /// returns (a static cache's mask spans the whole cache and is built at the first attention instead).
    /// </summary>
    private void ModelForwardStart(int xb)
    {
        _cachePosition = _t.New(8 * _seq);
        if (!_job.IsTraining && _job.Attention == AttentionKernel.Eager && _job.KvCache == KvCacheKind.Dynamic && _seq > 1)
        {
            long keys = _seq;
            int boolMask = _t.New(_seq * keys);
            _mask = _t.New((long)_c * _batch * _seq * keys);
            _t.Drop(boolMask);
        }
        var (pairs, dim) = _a.RotaryTables;
        long s = _seq, table = s * dim;
        for (int r = 0; r < pairs; r++)
        {
            int positions = _t.New(4 * s);
            int freqs = _t.New(4 * table / 2);
            int emb = _t.New(4 * table);
            int c0 = _t.New(4 * table), cos = _t.New(4 * table);
            _t.Drop(c0);
            int s0 = _t.New(4 * table), sin = _t.New(4 * table);
            _t.Drop(s0);
            int cosX = cos, sinX = sin;
            if (xb < 4) { cosX = _t.New(xb * table); sinX = _t.New(xb * table); _t.Drop(cos, sin); }
            _t.Drop(positions, freqs, emb);
            _rope.Add((cosX, sinX));
        }
    }

    /// <summary>The model forward returns: its locals are released (what autograd saved of them lives on). Checkpointed
    /// layers keep the rotary tables (transformers passes position_embeddings to each checkpointed call, which holds them
    /// for its recomputation) until the backward has run.</summary>
    private void ModelForwardEnd()
    {
        if (_embeds >= 0) { _t.Drop(_embeds); _embeds = -1; }
        if (_positionEmbeds >= 0) { _t.Drop(_positionEmbeds); _positionEmbeds = -1; }
        if (_cachePosition >= 0) { _t.Drop(_cachePosition); _cachePosition = -1; }
        if (!_job.IsTraining) DropForwardMasks();
        if (_job.Checkpointing == Checkpointing.None || !_t.Recording) ReleaseRotaryTables();
    }

    private void ReleaseRotaryTables()
    {
        foreach (var (cos, sin) in _rope) _t.Drop(cos, sin);
        _rope.Clear();
    }

    /// <summary>The rotary tables a layer reads (Gemma 3's sliding layers: the local ones); (-1, -1) when none are traced.</summary>
    private (int Cos, int Sin) RotaryTable(int layer) =>
        _rope.Count == 0 ? (-1, -1) : _rope[_rope.Count > 1 && _a.IsSlidingLayer(layer) ? 1 : 0];

    private int Embedding(int ids, long tokens)
    {
        int bytes = _job.IsTraining ? _r : _c;
        int x = _t.New(bytes * tokens * _a.HiddenSize);
        // embedding_dense_backward allocates the full table's gradient and sorts the ids.
        _t.Op(x, [], saved: [ids], weights: [new WeightGrad(_embed, _embed.Bytes)], backwardTemporaries: [8 * tokens, 8 * tokens]);
        // inputs_embeds stays bound in the model's forward until it returns.
        _embeds = _t.Hold(x);
        if (_a.EmbeddingMultiplier != 1.0)
        {
            // Gemma, Gemma 2: hidden_states = inputs_embeds * normalizer, a new tensor (inputs_embeds stays bound).
            int scaled = _t.New(bytes * tokens * _a.HiddenSize);
            _t.Op(scaled, [x]);
            _t.Drop(x);
            if (!_a.ScaledEmbeddingIsANewHiddenState)
            {
                // Gemma 3's scaled embedding module, Granite's inputs_embeds * embedding_multiplier: the lookup's output dies.
                _t.Drop(_embeds);
                _embeds = _t.Hold(scaled);
            }
            x = scaled;
        }
        if (_a.Positions != PositionKind.Learned) return x;
        // GPT-2: hidden_states = inputs_embeds + wpe(position_ids), position_ids of batch 1; position_embeds stays bound too.
        _positionEmbeds = _t.New(bytes * _seq * _a.HiddenSize);
        int sum = _t.New(bytes * tokens * _a.HiddenSize);
        _t.Op(sum, [x]);
        _t.Drop(x);
        return sum;
    }

    private int LayerOrCheckpoint(int i, int x)
    {
        if (_job.Checkpointing == Checkpointing.None || !_t.Recording)
        {
            int y = Layer(i, x, null, 0);
            _t.Drop(x);
            return y;
        }
        _t.Recording = false;
        int output = Layer(i, x, null, 0);
        _t.Recording = true;
        _t.Checkpoint(output, x, input =>
        {
            // The recomputation runs under the saved autocast state in its own context, whose exit clears the cache.
            int again = Layer(i, input, null, 0);
            ClearCastCache();
            DropForwardMasks();
            return again;
        }, _layers[i].Profile.AnyTrainable);
        _t.Drop(x);
        return output;
    }

    /// <summary>One decoder layer: norm, attention (q/k/v, rotary, kernel, o_proj), residual, norm, MLP, residual.</summary>
    private int Layer(int i, int x, int[]? cache, long cachedTokens)
    {
        var L = _layers[i];
        long h = _a.HiddenSize;
        int rb = cache is null ? _r : _c;
        var (y, yb) = Norm(x, rb, L.Norm1);
        int attn = Attention(L, y, yb, i, cache, cachedTokens, out int weights);
        if (!_a.ParallelResidual || L.Norm2 is not null) _t.Drop(y);
        // Gemma 2/3 normalise the attention's output before the residual add (post_attention_layernorm).
        if (L.PostAttentionNorm is { } postAttention) attn = NormReplacing(attn, _amp ? 2 : _c, postAttention);
        int h1 = _t.New(rb * T * h);
        _t.Op(h1, [x, attn]);
        _t.Drop(attn);
        int mlpIn = h1;
        int y2 = -1;
        int y2b = yb;
        if (L.Norm2 is not null) { (y2, y2b) = Norm(h1, rb, L.Norm2); mlpIn = y2; }
        else if (_a.ParallelResidual) { y2 = y; mlpIn = y; }
        int m = L.Moe is { } moe ? MoeBlock(L, moe, mlpIn, y2b) : Mlp(L, mlpIn, y2b);
        if (y2 >= 0) _t.Drop(y2);
        // … and the MLP's output too (post_feedforward_layernorm).
        if (L.PostFeedforwardNorm is { } postFeedforward) m = NormReplacing(m, _amp ? 2 : _c, postFeedforward);
        int output = _t.New(rb * T * h);
        _t.Op(output, [h1, m]);
        _t.Drop(h1, m);
        // `hidden_states, _ = self.self_attn(...)`: eager attention returns its weights, which the layer's `_` keeps
        // until the layer returns.
        if (weights >= 0) _t.Drop(weights);
        return output;
    }

    /// <summary>fp32 q/k/v after kbit prep: flash_attention_2 (or the Trainer's bf16 autocast around SDPA) casts them to
    /// 16 bits; otherwise they pass unchanged.</summary>
    private (int Q, int K, int V, int Bytes) KbitAttentionInputs(int q, int k, int v, long qWidth, long kWidth, long vWidth, int ob)
    {
        if (!_kbit || ob == _c16) return (q, k, v, ob);
        return (Cast(q, qWidth, _c16), Cast(k, kWidth, _c16), Cast(v, vWidth, _c16), _c16);
    }

    /// <summary>A norm whose input dies with it (a sublayer's output, normalised before the residual add).</summary>
    private int NormReplacing(int x, int xb, Param weight)
    {
        var (y, _) = Norm(x, xb, weight);
        _t.Drop(x);
        return y;
    }

    /// <summary>HF RMSNorm: fp32 upcast, pow, mean, rsqrt, scale, cast back, weight (LayerNorm: one fused op).</summary>
    private (int Y, int Bytes) Norm(int x, int xb, Param weight, long width = 0)
    {
        // A q/k norm normalises each head (its weight is head_dim wide) or the whole projection (OLMo 2): one row of
        // statistics per weight-wide group.
        long h = width > 0 ? width : _a.HiddenSize, rows = T * Math.Max(1, h / Math.Max(1, weight.Elements));
        if (_a.FusedLayerNorm)
        {
            int ln = _t.New(xb * T * h);
            int mean = _t.New(4 * rows), rstd = _t.New(4 * rows);
            _t.Op(ln, [x], saved: [x, mean, rstd], weights: [new WeightGrad(weight, weight.Bytes)], backwardTemporaries: [4 * T * h]);
            _t.Drop(mean, rstd);
            return (ln, xb);
        }
        int n32 = Normalized32(x, xb, h, rows);
        int nc = n32;
        if (xb < 4) { nc = _t.New(xb * T * h); _t.Op(nc, [n32]); }
        int y = _t.New(xb * T * h);
        _t.Op(y, [nc], saved: weight.Trainable ? [nc] : [], weights: [new WeightGrad(weight, weight.Bytes)]);
        _t.Drop(nc);
        if (xb < 4) _t.Drop(n32);
        return (y, xb);
    }

    /// <summary>The normalisation an RMSNorm (and Llama 4's weightless L2 norm) runs in fp32: <c>x.float()</c>, x² and its
    /// mean over each of <paramref name="rows"/> rows, + ε, rsqrt (kept), the product (keeping the fp32 x and the rsqrt).
    /// Returns the fp32 product; <paramref name="x"/> stays the caller's.</summary>
    private int Normalized32(int x, int xb, long width, long rows)
    {
        int x32 = x;
        if (xb < 4) { x32 = _t.New(4 * T * width); _t.Op(x32, [x]); }
        else _t.Hold(x);
        int squared = _t.New(4 * T * width);
        _t.Op(squared, [x32], saved: [x32]);
        int mean = _t.New(4 * rows);
        _t.Op(mean, [squared]);
        _t.Drop(squared);
        int shifted = _t.New(4 * rows);
        _t.Op(shifted, [mean]);
        _t.Drop(mean);
        int rsqrt = _t.New(4 * rows);
        _t.Op(rsqrt, [shifted], saved: [rsqrt]);
        _t.Drop(shifted);
        int normed = _t.New(4 * T * width);
        _t.Op(normed, [x32, rsqrt], saved: [x32, rsqrt]);
        _t.Drop(x32, rsqrt);
        return normed;
    }

    /// <summary>A linear (with PEFT's LoRA branch): under AMP autocast casts the input and the weight to 16 bits (the
    /// weight's copy cached for the forward when it is a trainable leaf).</summary>
    private int Linear(int x, int xb, LinearParams lp, out int outBytes)
    {
        var u = lp.Use;
        int input = x, inBytes = xb;
        // bitsandbytes' Linear4bit (kbit prep): x.to(compute_dtype), the matmul, then out.to(input dtype).
        bool kbitLinear = _kbit && lp.Weight.Quantized;
        if ((_amp || kbitLinear) && xb == 4)
        {
            input = _t.New(2 * T * u.In);
            _t.Op(input, [x]);
            inBytes = 2;
        }
        else _t.Hold(x);
        int weight = -1;
        // Autocast's cast is a no-op for a weight already in 16 bits (a LoRA base loaded in bf16): no copy then.
        bool sixteenBitWeight = !lp.Weight.Quantized && lp.Weight.StorageBytes == 2 * lp.Weight.Elements;
        // A quantized weight (bitsandbytes Params4bit / Int8Params, GPTQ / AWQ buffers) is not a float tensor autocast
        // casts: its layer dequantizes it in the compute dtype below.
        if (_amp && _job.IsTraining && !sixteenBitWeight && !lp.Weight.Quantized)
        {
            // Autocast caches the 16-bit copy of a trainable leaf for the rest of the forward; a frozen weight is cast
            // anew at every use.
            if (lp.Weight.Trainable && _castCache.TryGetValue(lp.Weight, out weight)) _t.Hold(weight);
            else
            {
                weight = _t.New(2 * lp.Weight.Elements);
                if (lp.Weight.Trainable) _castCache[lp.Weight] = _t.Hold(weight);
            }
        }
        int ob = _amp || kbitLinear ? 2 : _c;
        // bitsandbytes / int weights: dequantized to the compute dtype for each matmul (and again in backward).
        if (lp.Weight.Quantized) weight = _t.New((long)_c16 * lp.Weight.Elements);
        int output = _t.New(ob * T * u.Out);
        Span<int> saved = stackalloc int[2];
        int savedCount = 0;
        if (lp.Weight.Trainable) saved[savedCount++] = input;
        if (weight >= 0 && _t.RequiresGrad(input) && !lp.Weight.Quantized) saved[savedCount++] = weight;
        _t.Op(output, [input], saved: saved[..savedCount], weights: [new WeightGrad(lp.Weight, _amp ? 2 : lp.Weight.Bytes)],
            backwardTemporaries: lp.Weight.Quantized ? [(long)_c16 * lp.Weight.Elements] : default);
        if (kbitLinear && xb != ob)
        {
            if (weight >= 0) { _t.Drop(weight); weight = -1; }
            int back = _t.New(xb * T * u.Out);
            _t.Op(back, [output]);
            _t.Drop(output);
            output = back;
            ob = xb;
        }
        if (weight >= 0) _t.Drop(weight);
        if (lp.LoraA is { } A && lp.LoraB is { } B)
        {
            long rank = A.Elements / u.In;
            int lb = _amp ? 2 : _ad;
            int xa = x;
            if (lb != xb) { xa = _t.New(lb * T * u.In); _t.Op(xa, [x]); }
            else _t.Hold(x);
            // lora_dropout: a private copy and a 1-byte mask (native_dropout) per adapted linear while training.
            if (_loraDropout > 0 && _t.Recording)
            {
                int dropped = _t.New(lb * T * u.In), mask = _t.New(T * u.In);
                _t.Op(dropped, [xa], saved: [mask]);
                _t.Drop(xa, mask);
                xa = dropped;
            }
            int a = _t.New(lb * T * rank);
            _t.Op(a, [xa], saved: [xa], weights: [new WeightGrad(A, lb)]);
            _t.Drop(xa);
            int bOut = _t.New(lb * T * u.Out);
            _t.Op(bOut, [a], saved: [a], weights: [new WeightGrad(B, lb)]);
            _t.Drop(a);
            int scaled = _t.New(lb * T * u.Out);
            _t.Op(scaled, [bOut]);
            _t.Drop(bOut);
            int sumBytes = Math.Max(ob, lb);
            int sum = _t.New(sumBytes * T * u.Out);
            _t.Op(sum, [output, scaled]);
            _t.Drop(output, scaled);
            output = sum;
            if (sumBytes != ob)
            {
                int back = _t.New(ob * T * u.Out);
                _t.Op(back, [sum]);
                _t.Drop(sum);
                output = back;
            }
        }
        _t.Drop(input);
        outBytes = ob;
        return output;
    }

    private int Linear(int x, int xb, LinearParams lp) => Linear(x, xb, lp, out _);

    private int Attention(LayerParams L, int y, int yb, int layer, int[]? cache, long cachedTokens, out int weights)
    {
        if (_a.Mla is { } mla && L.KvLatentNorm is not null) return MlaAttention(L, mla, y, yb, layer, cache, cachedTokens, out weights);
        weights = -1;
        long qW = _a.QueryWidth, kvW = _a.KvWidth, heads = _a.NumHeads, s = _seq, b = _batch;
        int q, k, v;
        if (L.AttnIn.Length == 1)
        {
            // Fused qkv projection (GPT-2 c_attn, Falcon, phi-3): one output split into views.
            int qkv = Linear(y, yb, L.AttnIn[0]);
            q = _t.Hold(qkv); k = _t.Hold(qkv); v = qkv;
        }
        else
        {
            // Qwen3Attention: q_norm(q_proj(x).view(..., head_dim)), then k the same way, then v.
            q = QkNormed(Linear(y, yb, L.AttnIn[0], out int qb), qb, L.QNorm, qW);
            k = L.AttnIn.Length > 1 ? QkNormed(Linear(y, yb, L.AttnIn[1], out int kb), kb, L.KNorm, kvW) : _t.Hold(q);
            v = L.AttnIn.Length > 2 ? Linear(y, yb, L.AttnIn[2]) : _t.Hold(k);
        }
        int ob = _amp ? 2 : _c;
        // Rotary: q·cos + rotate_half(q)·sin. Under AMP cos/sin are fp32 (the fp32 hidden state's dtype), so the
        // products promote to fp32 and SDPA's autocast casts them back.
        int rb = _amp && cache is null ? _r : ob;
        if (_a.Llama4Attention)
        {
            (q, k) = Llama4Positions(q, k, layer, ob);
            rb = ob;
        }
        else if (_a.Positions == PositionKind.Rotary)
        {
            // query_states, key_states = apply_rotary_pos_emb(...): the projections are rebound only once both exist.
            int qe = Rotary(q, qW, ob, rb, layer), ke = Rotary(k, kvW, ob, rb, layer);
            _t.Drop(q, k);
            (q, k) = (qe, ke);
        }
        if (rb != ob)
        {
            q = Cast(q, qW, ob);
            k = Cast(k, kvW, ob);
        }
        (q, k, v, ob) = KbitAttentionInputs(q, k, v, qW, kvW, kvW, ob);
        long keys = s;
        if (cache is not null)
        {
            // key_states, value_states = past_key_values.update(...): the fresh states are rebound once both are cached.
            int ki = 2 * layer, vi = 2 * layer + 1;
            int kc = AppendToCache(cache, ki, k, kvW, cachedTokens, out keys), vc = AppendToCache(cache, vi, v, kvW, cachedTokens, out _);
            _t.Drop(k, v);
            (k, v) = (kc, vc);
        }
        int output;
        bool eager = _job.Attention == AttentionKernel.Eager;
        // Prefill and decode too: generate's causal mask is skipped (masking_utils allow_is_causal_skip), so transformers
        // calls SDPA with enable_gqa as in training, and the dispatch ends at the same kernel. A static cache's mask or a
        // sliding layer's makes transformers repeat K and V itself, and SDPA then sees equal head counts.
        bool withMask = cache is not null && _job.KvCache == KvCacheKind.Static || SlidingMasked(layer, s);
        bool math = _job.Attention == AttentionKernel.Sdpa
            && ActivationModel.SdpaFallsBackToMath(_a, _kbit ? _c16 : _c, _job.PreAmpereGpu, _job.Precision.ComputeDType() == DType.Bf16, kvRepeated: withMask);
        if (eager || math)
        {
            var (kr, vr) = RepeatKv(k, v, ob, keys);
            long pairs = b * heads * s * keys;
            int scores, boundUntilReturn = -1;
            if (math)
            {
                // aten _scaled_dot_product_attention_math: q and k scaled by √scale, scores (a boolean mask converted to
                // the query's dtype and added in place), softmax, p·v.
                if (SlidingMasked(layer, s) && _slidingMask < 0) _slidingMask = _t.New(s * keys);
                int bias = withMask ? _t.New(ob * b * s * keys) : -1;
                int qs = _t.New(ob * T * qW); _t.Op(qs, [q]);
                int ks = _t.New(ob * b * keys * qW); _t.Op(ks, [kr]);
                int sc = _t.New(ob * pairs); _t.Op(sc, [qs, ks], saved: [qs, ks]);
                _t.Drop(qs, ks);
                int sm = Softmax(sc, ob * pairs);
                _t.Drop(sc);
                if (bias >= 0) _t.Drop(bias);
                scores = sm;
            }
            else if (_a.AttentionSinks)
            {
                // gpt_oss eager_attention_forward: q·kᵀ · scale, + mask, the sink logit concatenated as one more column,
                // the row maximum subtracted, softmax in the logits' dtype (kept), the sink column sliced off (a view).
                // attn_weights stays bound to the masked scores until the dropout line rebinds it; combined_logits stays
                // bound to the max-subtracted copy until the function returns.
                int masked = MaskedScores(q, kr, ob, s, keys);
                long rows = b * heads * s, wide = rows * (keys + 1);
                int combined = _t.New(ob * wide); _t.Op(combined, [masked]);
                int maxValues = _t.New(ob * rows), maxIndices = _t.New(8 * rows);
                _t.Op(maxValues, [combined], saved: [maxIndices]);
                _t.Drop(maxIndices);
                int shifted = _t.New(ob * wide); _t.Op(shifted, [combined, maxValues]);
                _t.Drop(combined, maxValues);
                int probs = Softmax(shifted, ob * wide);
                _t.Drop(masked);
                scores = probs;
                boundUntilReturn = shifted;
            }
            else if (_a.Llama4Attention)
            {
                // Llama 4's eager_attention_forward: softmax(attn_weights, dim=-1) in the scores' dtype (no fp32 cast); the
                // scores are freed when the statement rebinds them. Under autocast softmax is on the fp32 list (an fp32
                // copy in, the fp32 output kept), and the product with V casts the probabilities back to 16 bits.
                int masked = MaskedScores(q, kr, ob, s, keys);
                bool autocastFp32 = _amp && ob < 4;
                int input = masked;
                if (autocastFp32) { input = _t.New(4 * pairs); _t.Op(input, [masked]); }
                int probs = Softmax(input, (autocastFp32 ? 4 : ob) * pairs);
                if (autocastFp32) _t.Drop(input);
                _t.Drop(masked);
                scores = probs;
                if (autocastFp32)
                {
                    scores = _t.New(ob * pairs);
                    _t.Op(scores, [probs]);
                    _t.Drop(probs);
                }
            }
            else scores = EagerProbabilities(q, kr, ob, s, keys);
            int o = _t.New(ob * T * qW);
            _t.Op(o, [scores, vr], saved: [scores, vr]);
            if (eager) weights = scores;
            else _t.Drop(scores);
            // transpose(1, 2).contiguous() before o_proj; the repeated K/V are locals of the attention function.
            output = _t.New(ob * T * qW);
            _t.Op(output, [o]);
            _t.Drop(o, kr, vr);
            if (boundUntilReturn >= 0) _t.Drop(boundUntilReturn);
        }
        else if (cache is not null && _job.KvCache == KvCacheKind.Static && _a.NumKvHeads < _a.NumHeads)
        {
            // Static cache: SDPA gets a mask over the whole cache, so no native GQA: K/V repeated to the query heads.
            long full = StaticCacheTokens(layer);
            int kr = _t.New(ob * b * full * qW), vr = _t.New(ob * b * full * qW);
            output = _t.New(ob * T * qW);
            _t.Drop(kr, vr);
        }
        else if (SlidingMasked(layer, s))
        {
            // A sliding layer whose window the sequence reaches: transformers' boolean mask (once per forward), K/V repeated
            // to the query's heads by transformers (no native GQA with a mask), and SDPA's memory-efficient kernel keeping
            // the mask converted to the query's dtype as its bias (padded over the heads when s is not a multiple of 16).
            if (_slidingMask < 0) _slidingMask = _t.New(s * keys);
            var (kr, vr) = RepeatKv(k, v, ob, keys);
            int bias = _t.New(keys % 16 == 0 ? ob * b * s * keys : ob * b * heads * s * ((keys + 15) / 16 * 16));
            output = _t.New(ob * T * qW);
            int lse = _t.New(4 * b * heads * s);
            _t.Op(output, [q, kr, vr], saved: [q, kr, vr, output, lse, bias], backwardTemporaries: [4 * T * qW, 4 * b * heads * s]);
            _t.Drop(lse, bias, kr, vr);
        }
        else
        {
            // Fused SDPA (flash / memory-efficient): output and fp32 log-sum-exp, both saved with q, k, v; its backward
            // accumulates dq in fp32 (flash-attention's dq_accum) and keeps per-row softmax sums.
            output = _t.New(ob * T * qW);
            int lse = _t.New(4 * b * heads * s);
            _t.Op(output, [q, k, v], saved: [q, k, v, output, lse], backwardTemporaries: [4 * T * qW, 4 * b * heads * s]);
            _t.Drop(lse);
        }
        // query_states, key_states, value_states are locals of the attention module: alive through o_proj.
        if (L.AttnOut is null) { _t.Drop(q, k, v); return output; }
        int attn = Linear(output, ob, L.AttnOut);
        _t.Drop(output);
        _t.Drop(q, k, v);
        return attn;
    }

    /// <summary>transformers' repeat_kv: K and V copied to the query's heads under GQA (expand + reshape), else the same
    /// tensors held again.</summary>
    private (int K, int V) RepeatKv(int k, int v, int ob, long keys)
    {
        if (_a.NumKvHeads >= _a.NumHeads) return (_t.Hold(k), _t.Hold(v));
        long bytes = ob * _batch * keys * _a.QueryWidth;
        int kr = _t.New(bytes); _t.Op(kr, [k]);
        int vr = _t.New(bytes); _t.Op(vr, [v]);
        return (kr, vr);
    }

    /// <summary>SDPA on a sliding (or chunked) layer with a materialised mask: a multi-token pass that reaches the window
    /// (transformers' _ignore_causal_mask_sdpa keeps SDPA causal only while kv_length &lt; the window).</summary>
    private bool SlidingMasked(int layer, long seq) =>
        _job.Attention == AttentionKernel.Sdpa && seq > 1 && _a.IsSlidingLayer(layer) && _a.SlidingWindow is { } w && seq >= w;

    /// <summary>transformers' boolean mask of the sliding layers (-1: none yet this forward).</summary>
    private int _slidingMask = -1;

    /// <summary>The masks the model's forward builds die when it returns (before the head) or when a recomputation ends.</summary>
    private void DropForwardMasks()
    {
        if (_mask >= 0) { _t.Drop(_mask); _mask = -1; }
        if (_slidingMask >= 0) { _t.Drop(_slidingMask); _slidingMask = -1; }
    }

    /// <summary>A projection through its q/k norm when the model has one (the projection's tensor dies with the statement).</summary>
    private int QkNormed(int projection, int bytes, Param? norm, long width)
    {
        if (norm is null) return projection;
        var (normed, _) = Norm(projection, bytes, norm, width);
        _t.Drop(projection);
        return normed;
    }

    /// <summary>
    /// A softmax (not log-softmax) whose output autograd keeps for its backward. On CUDA that backward
    /// (<c>softmax_backward_cuda_out</c>, aten/src/ATen/native/cuda/SoftMax.cu) forms <c>tmp = grad * output</c> before
    /// the input gradient's kernel runs: one more tensor of the output's size, alive beside the incoming gradient, the kept
    /// output and the input gradient (allocated first, as the structured op's out tensor). The H100 grid shows it where
    /// an attention backward is the step's peak: TinyLlama fp32 (math SDPA) and Llama-2-7B eager LoRA were each short by
    /// exactly one fp32 score tensor there, 256 MiB and 512 MiB, and match to 1.5 KiB with it.
    /// </summary>
    private int Softmax(int input, long outputBytes)
    {
        int output = _t.New(outputBytes);
        _t.Op(output, [input], saved: [output], backwardTemporaries: [outputBytes]);
        return output;
    }

    /// <summary>eager_attention_forward's probabilities: the masked scores, then <c>softmax(attn_weights,
    /// dtype=float32).to(dtype)</c> — a 16-bit input is converted to fp32 first, then the fp32 softmax (kept), then the
    /// cast; the old attn_weights lives until the statement rebinds it.</summary>
    private int EagerProbabilities(int q, int kr, int ob, long seq, long keys)
    {
        long pairs = _batch * _a.NumHeads * seq * keys;
        int masked = MaskedScores(q, kr, ob, seq, keys);
        int in32 = masked;
        if (ob < 4) { in32 = _t.New(4 * pairs); _t.Op(in32, [masked]); }
        else _t.Hold(masked);
        int sm = Softmax(in32, 4 * pairs);
        _t.Drop(in32);
        int scores = sm;
        if (ob < 4) { int p16 = _t.New(ob * pairs); _t.Op(p16, [sm]); _t.Drop(sm); scores = p16; }
        _t.Drop(masked);
        return scores;
    }

    /// <summary>Eager attention's scores up to the mask: q·kᵀ (keeping q and the repeated k), times the scale, plus the
    /// causal mask (built once per forward), each a new tensor that frees the one before.</summary>
    private int MaskedScores(int q, int kr, int ob, long seq, long keys)
    {
        long pairs = _batch * _a.NumHeads * seq * keys;
        if (_mask < 0 && seq > 1) _mask = _t.New((long)ob * _batch * seq * keys);
        int mm = _t.New(ob * pairs); _t.Op(mm, [q, kr], saved: [q, kr]);
        int scaled = _t.New(ob * pairs); _t.Op(scaled, [mm]);
        _t.Drop(mm);
        // Gemma 2's soft-cap: scores / cap, tanh (which keeps its output), · cap, each a new tensor.
        if (_a.AttnLogitSoftcap is not null) scaled = SoftCap(scaled, ob * pairs);
        if (_mask < 0) return scaled;
        int masked = _t.New(ob * pairs); _t.Op(masked, [scaled]);
        _t.Drop(scaled);
        return masked;
    }

    /// <summary><c>x / cap</c>, <c>tanh</c> (its output saved for backward), <c>· cap</c>: three new tensors, each freeing the
    /// one before (the saved tanh output lives on in the graph).</summary>
    private int SoftCap(int x, long bytes)
    {
        int quotient = _t.New(bytes); _t.Op(quotient, [x]);
        _t.Drop(x);
        int tanh = _t.New(bytes); _t.Op(tanh, [quotient], saved: [tanh]);
        _t.Drop(quotient);
        int capped = _t.New(bytes); _t.Op(capped, [tanh]);
        _t.Drop(tanh);
        return capped;
    }

    /// <summary>transformers' DynamicLayer.update: <c>self.keys = torch.cat([self.keys, key_states], dim=-2)</c>, also on
    /// the first call (lazy_initialization starts from an empty tensor), so the cache is always a fresh copy one step
    /// longer; the old cache and the new states are freed when the attention rebinds its variables. A
    /// DynamicSlidingWindowLayer makes the same concatenation and keeps a view of its last <c>window − 1</c> tokens (the
    /// concatenation's storage stays alive until the next step replaces it). A StaticLayer allocates the full context
    /// (a StaticSlidingWindowLayer the window) at its first update and writes each step in place (index_copy_).
    /// <paramref name="keys"/>: the tokens the attention sees.</summary>
    private int AppendToCache(int[] cache, int slot, int fresh, long width, long cachedTokens, out long keys)
    {
        long kvBytes = (long)Math.Ceiling(_job.ResolvedKvDtype.Bytes() * _batch * width);
        bool sliding = _a.IsSlidingLayer(slot / 2);
        if (_job.KvCache == KvCacheKind.Static)
        {
            if (cache[slot] < 0) cache[slot] = _t.New(kvBytes * StaticCacheTokens(slot / 2));
            keys = sliding ? Math.Min(cachedTokens + _seq, _a.SlidingWindow!.Value) : cachedTokens + _seq;
            return _t.Hold(cache[slot]);
        }
        long kept = _cacheTokens[slot];
        keys = kept + _seq;
        int grown = _t.New(kvBytes * keys);
        if (cache[slot] >= 0) _t.Drop(cache[slot]);
        cache[slot] = grown;
        _cacheTokens[slot] = sliding ? Math.Min(keys, _a.SlidingWindow!.Value - 1L) : keys;
        return _t.Hold(grown);
    }

    /// <summary>Tokens a static cache layer allocates: the context, or the window for a sliding layer.</summary>
    private long StaticCacheTokens(int layer) =>
        _a.IsSlidingLayer(layer) ? _a.SlidingCacheTokens(0, false, staticCache: true, _job.ContextTokens) : _job.ContextTokens;

    /// <summary>Per cache tensor (layer × K/V), the tokens the layer's keys hold (for a sliding layer, its view's length).</summary>
    private long[] _cacheTokens = [];

    /// <summary><c>x * cos + rotate_half(x) * sin</c> (x stays the caller's): each product saves its table for backward (the
    /// gradient of x is grad · cos), which keeps the layer's tables alive until its backward.</summary>
    private int Rotary(int x, long width, int xb, int ob, int layer)
    {
        var (cos, sin) = RotaryTable(layer);
        int t1 = _t.New(ob * T * width); _t.Op(t1, [x], saved: cos >= 0 ? [cos] : []);
        int neg = _t.New(xb * T * width / 2); _t.Op(neg, [x]);
        int rh = _t.New(xb * T * width); _t.Op(rh, [neg, x]);
        _t.Drop(neg);
        int t2 = _t.New(ob * T * width); _t.Op(t2, [rh], saved: sin >= 0 ? [sin] : []);
        _t.Drop(rh);
        int sum = _t.New(ob * T * width); _t.Op(sum, [t1, t2]);
        _t.Drop(t1, t2);
        return sum;
    }

    private int Cast(int x, long width, int bytes)
    {
        int y = _t.New(bytes * T * width);
        _t.Op(y, [x]);
        _t.Drop(x);
        return y;
    }

    private int Mlp(LayerParams L, int x, int xb)
    {
        // A sparse layer's dense MLP is its shared expert, as wide as its down projection's input.
        long f = L.Moe is not null && L.MlpDown is { } shared ? shared.Use.In : _a.IntermediateSize;
        int ob = _amp ? 2 : _c;
        if (L.MlpIn.Length >= 2 || (_a.Mlp == MlpKind.Gated && L.MlpIn.Length == 1 && L.MlpIn[0].Use.Out == 2 * f))
        {
            int g, u;
            if (L.MlpIn.Length >= 2) { g = Linear(x, xb, L.MlpIn[0]); u = -1; }
            else { int gu = Linear(x, xb, L.MlpIn[0]); g = _t.Hold(gu); u = gu; }
            int act = _t.New(ob * T * f); _t.Op(act, [g], saved: [g]);
            _t.Drop(g);
            if (u < 0) u = Linear(x, xb, L.MlpIn[1]);
            // down_proj(act_fn(gate_proj(x)) * up_proj(x)): each temporary dies as soon as the next op has consumed it.
            int prod = _t.New(ob * T * f); _t.Op(prod, [act, u], saved: [act, u]);
            _t.Drop(act, u);
            int down = L.MlpDown is { } d ? Linear(prod, ob, d) : _t.Hold(prod);
            _t.Drop(prod);
            return down;
        }
        if (L.MlpIn.Length == 0) return _t.Hold(x);
        int fc = Linear(x, xb, L.MlpIn[0]);
        int gelu = _t.New(ob * T * f); _t.Op(gelu, [fc], saved: [fc]);
        _t.Drop(fc);
        int o = L.MlpDown is { } dn ? Linear(gelu, ob, dn) : _t.Hold(gelu);
        _t.Drop(gelu);
        return o;
    }

    private void ClearCastCache()
    {
        foreach (var (_, t) in _castCache) _t.Drop(t);
        _castCache.Clear();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Optimizer

    /// <summary>
    /// torchtune's optimizer_in_bwd: each trainable parameter has an optimizer of its own, stepped by a post-accumulate-grad
    /// hook as soon as its gradient is complete, then <c>zero_grad()</c> (set_to_none): one parameter's gradient, state
    /// creation and foreach temporaries at a time, inside backward (the step after backward finds no gradients).
    /// </summary>
    private void StepInBackward(Param p)
    {
        OptimizerStep([p]);
        ZeroGrad(p);
    }

    /// <summary><c>zero_grad(set_to_none=True)</c> for one parameter: its <c>.grad</c> released.</summary>
    private void ZeroGrad(Param p)
    {
        if (p.Grad < 0) return;
        _t.Drop(p.Grad);
        p.Grad = -1;
    }

    /// <summary>The step after backward, over every parameter with a gradient.</summary>
    private void OptimizerStep() => OptimizerStep(_params.Where(p => p.Trainable && p.Grad >= 0).ToList());

    /// <summary>torch.optim.AdamW: state created lazily at the first step (exp_avg, exp_avg_sq per parameter, in order);
    /// foreach (CUDA's default) allocates <c>_foreach_sqrt(exp_avg_sqs)</c> for the whole group, freed at the end of the
    /// step; fused allocates nothing.</summary>
    private void OptimizerStep(List<Param> trainable)
    {
        switch (_job.Optimizer)
        {
            case OptimizerKind.AdamW:
                foreach (var p in trainable.Where(p => p.ExpAvg < 0))
                {
                    p.ExpAvg = _t.New(p.Nbytes);
                    p.ExpAvgSq = _t.New(p.Nbytes);
                }
                if (!_job.FusedOptimizer)
                {
                    var sqrt = trainable.Select(p => _t.New(p.Nbytes)).ToList();
                    foreach (int s in sqrt) _t.Drop(s);
                }
                break;
            case OptimizerKind.SgdMomentum:
                foreach (var p in trainable.Where(p => p.ExpAvg < 0)) p.ExpAvg = _t.New(p.Nbytes);
                break;
            case OptimizerKind.AdamW8bit:
                // bitsandbytes Optimizer8bit.init_state: state1 and state2 in uint8 with one fp32 absmax per block of 256
                // each, or two fp32 states for a tensor under 4,096 elements.
                foreach (var p in trainable.Where(p => p.ExpAvg < 0))
                {
                    if (p.Elements < ModelProfile.EightBitMinSize)
                    {
                        p.ExpAvg = _t.New(4 * p.Elements);
                        p.ExpAvgSq = _t.New(4 * p.Elements);
                        continue;
                    }
                    p.ExpAvg = _t.New(p.Elements);
                    p.ExpAvgSq = _t.New(p.Elements);
                    long absmax = 4 * ((p.Elements + ModelProfile.EightBitBlock - 1) / ModelProfile.EightBitBlock);
                    _t.New(absmax);
                    _t.New(absmax);
                }
                break;
            case OptimizerKind.Adafactor:
                foreach (var p in trainable.Where(p => p.ExpAvg < 0)) p.ExpAvg = _t.New(Math.Max(4, (long)Math.Sqrt(p.Elements) * 2 * p.Bytes));
                break;
        }
    }
}
