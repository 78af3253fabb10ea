using Afinado.Planner.Architecture;
using static Afinado.Planner.Memory.LedgerBuilder;

namespace Afinado.Planner.Memory;

/// <summary>
/// The memory of a step's image inputs (<c>--images</c>), for the towers <see cref="VisionEncoder"/> describes. Every image
/// of the batch runs through the vision tower before the decoder: pixel_values (fp32, as the processor returns them), the
/// tower's blocks (the same per-op arithmetic as a decoder layer, <see cref="ActivationModel.Layer"/>, on a tower-shaped
/// architecture: SigLIP's and Qwen3-VL's LayerNorm/GELU blocks, Qwen2.5-VL's RMSNorm/gated blocks with window attention),
/// the merger or projector (Qwen3-VL's deepstack mergers too), and the image features scattered into inputs_embeds. The image tokens themselves are part of the sequence
/// (<see cref="Job.Seq"/>), so the decoder's lines already hold them.
/// <para>When the tower's adapters (or weights) train, autograd keeps the tower's saved tensors until the very end of
/// backward (the tower runs first, so it is differentiated last), the adapters get gradients and optimizer state, and the
/// decoder's first norm keeps its input (the image features now need a gradient). Otherwise the tower runs without
/// recording anything: only one block's temporaries, at <see cref="Phase.VisionTower"/>.</para>
/// </summary>
internal static class VisionLedger
{
    /// <summary>The moments of a training step at which every persistent line is live (such a line also exists while the
    /// tower runs, before the decoder), and at which the tower's saved tensors are: they are freed last in backward.</summary>
    private const Phase WholeForwardAndBackward = Phase.Forward | Phase.ForwardLastLayer | Phase.BackwardStart | Phase.BackwardHead | Phase.BackwardEnd;

    public static bool Planned(ModelProfile p, Job job) => job.Images > 0 && p.Architecture.Vision is not null;

    /// <summary>The lines of a training step's image inputs; <paramref name="text"/> are the decoder's activation settings.</summary>
    public static void AddTraining(List<LedgerEntry> e, ModelProfile p, Job job, in ActivationSettings text, bool explain)
    {
        // The decoder's lines first: those live across the whole step also exist while the tower runs.
        WithTowerMoment(e, training: true);
        var v = p.Architecture.Vision!;
        var image = v.Image(job.ImageWidth, job.ImageHeight);
        double images = (double)job.Batch * job.Images;
        AddPixelValues(e, v, image, images, Phase.Training | Phase.VisionTower, explain);
        var tower = Tower(v);
        var s = TowerSettings(text, images, image, v);
        var layers = TowerLayers(p, v);
        var stages = HeadStages(p, v);
        // Anything of the image side that trains or carries an adapter (a block, a merger stage, or Gemma 3's projector, a
        // bare matrix and a norm in no stage) makes autograd record the tower's forward from there on.
        bool trains = VisionTrains(p);
        if (trains)
        {
            // gradient_checkpointing_enable() reaches the tower's encoder too (SiglipEncoder, Qwen2_5_VisionTransformer's
            // blocks): each block keeps its input, and backward recomputes one block at a time.
            bool checkpointed = job.Checkpointing != Checkpointing.None;
            double blocks = 0, largest = 0, inputs = 0;
            int active = 0;
            for (int i = 0; i < layers.Count; i++)
            {
                if (!layers[i].Active) continue;
                double b = LayerSaved(tower, layers[i], i, s, v, image);
                blocks += b;
                largest = Math.Max(largest, b);
                inputs += s.R * s.Tokens * tower.HiddenSize;
                active++;
            }
            double merger = MergerSaved(stages, v, s, image, images, layers.Any(l => l.AnyTrainable), p);
            string last = v.Kind switch
            {
                VisionEncoderKind.Siglip or VisionEncoderKind.Pixtral => "projector", VisionEncoderKind.Qwen3Vl => "mergers (main and deepstack)",
                VisionEncoderKind.Llama4 => "pixel-shuffle adapter and projector", _ => "merger",
            };
            e.Add(new(LineKind.VisionTowerActivations, checkpointed ? "vision tower: block inputs (checkpointed) and " + last : "vision tower: saved activations",
                WholeForwardAndBackward | Phase.VisionTower, (checkpointed ? inputs : blocks) + merger,
                !explain ? "" : checkpointed
                    ? $"{active} of {v.Depth} blocks × {Images(images)} × {N(image.Patches)} patches × h {tower.HiddenSize} × {B(s.R)} B, + the {last} ({N(merger)} B); freed as backward leaves the tower, last"
                    : $"{active} of {v.Depth} blocks with saved tensors over {Images(images)} × {N(image.Patches)} patches, and the {last} ({N(merger)} B); freed as backward leaves the tower, last",
                TowerSource(v) + "; ActivationModel per-op rules on the tower's shape"));
            AddDecoderInputGrad(e, p, job, text, explain);
            // The tower's backward runs after the decoder's, whose last layer's temporaries (and recomputed layer) this
            // moment already counts: only the excess is added.
            double decoder = e.Where(x => x.Kind is LineKind.BackwardTemporaries or LineKind.RecomputedLayer).Sum(x => x.Bytes);
            double backward = ActivationModel.LayerBackwardTransient(tower, s) + (checkpointed ? largest : 0) - decoder;
            if (backward > 0)
                e.Add(new(LineKind.VisionTowerBackwardTemporaries, "vision tower: backward beyond a decoder layer's", Phase.BackwardEnd, backward,
                    explain ? $"one tower block's backward temporaries{(checkpointed ? " and its recomputed tensors" : "")}, less the decoder layer's counted at this moment" : "",
                    "derived from the same op list; torch.utils.checkpoint"));
        }
        AddBlockMask(e, v, s, trains, explain);
        AddForward(e, p, v, tower, s, image, images, Phase.Forward | Phase.ForwardLastLayer, explain);
        AddImageMasks(e, p, job, Phase.Forward | Phase.ForwardLastLayer, explain);
    }

    /// <summary>
    /// Image features that need a gradient reach the decoder through inputs_embeds (masked_scatter's output requires grad),
    /// so the decoder's first layers run as if their input needed one: the first layer that trains keeps what that adds
    /// (its first norm's fp32 input, and more when its attention's inputs train nothing), and frozen layers before it now
    /// save what their input gradient needs. Under checkpointing those frozen layers keep their inputs instead.
    /// </summary>
    private static void AddDecoderInputGrad(List<LedgerEntry> e, ModelProfile p, Job job, in ActivationSettings text, bool explain)
    {
        var a = p.Architecture;
        int first = Array.FindIndex(p.Layers, l => l.Active);
        if (first < 0 || p.Layers[first].InputRequiresGrad) return;
        double bytes;
        if (job.Checkpointing != Checkpointing.None) bytes = first * text.R * text.Tokens * a.HiddenSize;
        else
        {
            bytes = ActivationModel.Layer(a, p.Layers[first].WithInputGrad(), text).Total - ActivationModel.Layer(a, p.Layers[first], text).Total;
            for (int i = 0; i < first; i++) bytes += ActivationModel.Layer(a, p.Layers[i].WithInputGrad(), text).Total;
        }
        if (bytes <= 0) return;
        e.Add(new(LineKind.VisionDecoderInputGrad, "decoder: tensors the image features' gradient adds", WholeForwardAndBackward, bytes,
            explain ? first == 0
                ? $"the first layer's saved tensors with its input needing a gradient, less without (its first norm's fp32 input: T {N(text.Tokens)} × h {a.HiddenSize} × 4 B)"
                : $"{first} frozen layer(s) before the first trained one, now saving for their input gradient{(job.Checkpointing != Checkpointing.None ? " (their checkpointed inputs)" : "")}, and the first trained layer's extra" : "",
            "autograd records every op whose input requires grad; masked_scatter's output requires grad (ActivationModel per-op rules)"));
    }

    /// <summary>The lines of an inference prefill's image inputs (the tower without autograd).</summary>
    public static void AddInference(List<LedgerEntry> e, ModelProfile p, Job job, in ActivationSettings text, bool explain)
    {
        var v = p.Architecture.Vision!;
        var image = v.Image(job.ImageWidth, job.ImageHeight);
        double images = (double)job.Batch * job.Images;
        WithTowerMoment(e, training: false);
        // generate keeps pixel_values in its model_kwargs until it returns (prepare_inputs_for_generation stops passing them after the prefill).
        AddPixelValues(e, v, image, images, Phase.Prefill | Phase.Decode | Phase.VisionTower, explain);
        var tower = Tower(v);
        var s = TowerSettings(text, images, image, v);
        AddBlockMask(e, v, s, trains: false, explain);
        AddForward(e, p, v, tower, s, image, images, Phase.Prefill, explain);
        AddImageMasks(e, p, job, Phase.Prefill, explain);
    }

    /// <summary>Marks the decoder's lines that exist while the tower runs (everything live across the whole step) with
    /// <see cref="Phase.VisionTower"/>.</summary>
    private static void WithTowerMoment(List<LedgerEntry> e, bool training)
    {
        var persistent = training ? WholeForwardAndBackward : Phase.Prefill | Phase.Decode;
        for (int i = 0; i < e.Count; i++)
            if ((e[i].Phases & persistent) == persistent) e[i] = e[i] with { Phases = e[i].Phases | Phase.VisionTower };
    }

    /// <summary>pixel_values as the processor returns them: float32, except Llama 4's, which its processor normalizes in
    /// bfloat16 (one tile of tile × tile pixels per sequence).</summary>
    private static void AddPixelValues(List<LedgerEntry> e, VisionEncoder v, ImageGeometry image, double images, Phase phases, bool explain)
    {
        bool bf16 = v.Kind == VisionEncoderKind.Llama4;
        string shape = v.Kind switch
        {
            VisionEncoderKind.Siglip or VisionEncoderKind.Pixtral => $"{v.Channels} × {image.Width} × {image.Height}",
            VisionEncoderKind.Llama4 => $"{N(image.Sequences)} tile{(image.Sequences == 1 ? "" : "s")} × {v.Channels} × {v.ImageSize}²",
            _ => $"{N(image.Patches)} patches × {v.Channels}·{v.TemporalPatchSize}·{v.PatchSize}²",
        };
        e.Add(new(LineKind.VisionPixelValues, bf16 ? "image inputs: pixel_values (bf16)" : "image inputs: pixel_values (fp32)", phases, (bf16 ? 2.0 : 4.0) * images * image.PixelElements,
            explain ? $"{Images(images)} × {N(image.PixelElements)} values ({shape}) × {(bf16 ? 2 : 4)} B" : "",
            v.Kind switch
            {
                VisionEncoderKind.Siglip => "Gemma3ImageProcessor (float32 pixel_values)",
                VisionEncoderKind.Pixtral => "PixtralImageProcessor (float32, padded to the batch's largest image)",
                VisionEncoderKind.Llama4 => "Llama4ImageProcessorFast (rescale_and_normalize in bfloat16; tiles and a global tile)",
                _ => "Qwen2VLImageProcessor / Qwen3-VL's processor (flatten_patches, float32)",
            }));
    }

    /// <summary>The tower's forward: one block's temporaries beside the saved tensors so far, the hidden states, the
    /// pixels' compute-dtype copy; then the image features the decoder's embeddings are scattered from.</summary>
    private static void AddForward(List<LedgerEntry> e, ModelProfile p, VisionEncoder v, ModelArchitecture tower, in ActivationSettings s,
        ImageGeometry image, double images, Phase featurePhases, bool explain)
    {
        double block = ActivationModel.LayerInferenceTransient(tower, s);
        double copy = s.C * images * image.PixelElements;
        e.Add(new(LineKind.VisionTowerTemporaries, "vision tower: one block's temporaries", Phase.VisionTower, block + copy,
            explain ? $"{ActivationModel.LayerInferenceTransientFormula(tower, s)}, over {Images(images)} × {N(image.Patches)} patches; + pixel_values in {B(s.C)} B ({N(copy)} B)" : "",
            TowerSource(v)));
        // Qwen3-VL's deepstack features wait beside them until the decoder's first layers add them in.
        int sets = 1 + v.DeepstackMergers;
        double features = sets * s.C * images * image.Tokens * p.Architecture.HiddenSize;
        e.Add(new(LineKind.VisionImageFeatures, v.DeepstackMergers > 0 ? "image features and deepstack features" : "image features (scattered into inputs_embeds)", featurePhases, features,
            explain ? $"{(sets > 1 ? $"{sets} × " : "")}{Images(images)} × {N(image.Tokens)} tokens × h {p.Architecture.HiddenSize} × {B(s.C)} B, locals of the model's forward" : "",
            v.DeepstackMergers > 0 ? "transformers Qwen3VLModel (deepstack_visual_embeds, _deepstack_process)" : "transformers get_image_features + inputs_embeds.masked_scatter"));
    }

    /// <summary>Gemma 3 with images: token_type_ids make every attention mask bidirectional within each image, so the
    /// masks are built per sequence (full and sliding) and every layer's SDPA keeps a bias (<see cref="ActivationSettings.MaskEveryLayer"/>).
    /// The sliding-window mask line, when the plan has one, already holds one batch-expanded s² mask.</summary>
    private static void AddImageMasks(List<LedgerEntry> e, ModelProfile p, Job job, Phase phases, bool explain)
    {
        if (!ImageMasks(p.Architecture, job)) return;
        double seq = job.Seq, masks = 2.0 * job.Batch * seq * seq;
        if (e.Any(x => x.Kind == LineKind.SlidingWindowMask)) masks -= seq * seq;
        e.Add(new(LineKind.VisionImageMasks, "attention masks with image blocks (bool, per sequence)", phases, masks,
            explain ? $"full and sliding masks, b·s² × 1 B each ({N(job.Batch)} × {N(seq)}²){(e.Any(x => x.Kind == LineKind.SlidingWindowMask) ? ", less the sliding-window mask line's s²" : "")}" : "",
            "transformers Gemma3Model (token_type_ids_mask_function as or_mask_function of create_causal_mask / create_sliding_window_causal_mask)"));
    }

    /// <summary>Gemma 3's decoder masks every layer when the batch has images (SDPA; flash_attention_2 and eager take masks
    /// of their own).</summary>
    public static bool ImageMasks(ModelArchitecture a, Job job) =>
        job.Images > 0 && a.Vision?.Kind == VisionEncoderKind.Siglip && job.Attention == AttentionKernel.Sdpa;

    /// <summary>The tower's blocks as the decoder-layer arithmetic reads them.</summary>
    internal static ModelArchitecture Tower(VisionEncoder v)
    {
        // SigLIP's, Qwen3-VL's and Llama 4's blocks: nn.LayerNorm in the model's dtype (keeping its input) and a GELU MLP
        // (tanh or exact: the same saved tensors); Qwen2.5-VL's and Pixtral's: an RMSNorm with an fp32 upcast and a gated SiLU MLP.
        bool layerNorm = v.Kind is VisionEncoderKind.Siglip or VisionEncoderKind.Qwen3Vl or VisionEncoderKind.Llama4;
        return new()
        {
            ModelType = v.Kind switch
            {
                VisionEncoderKind.Siglip => "siglip_vision_model", VisionEncoderKind.Qwen25Vl => "qwen2_5_vl_vision",
                VisionEncoderKind.Pixtral => "pixtral", VisionEncoderKind.Llama4 => "llama4_vision_model", _ => "qwen3_vl_vision",
            },
            VocabSize = 0,
            HiddenSize = checked((int)v.HiddenSize),
            NumLayers = v.Depth,
            NumHeads = v.Heads,
            NumKvHeads = v.Heads,
            HeadDim = checked((int)(v.HiddenSize / v.Heads)),
            IntermediateSize = checked((int)v.IntermediateSize),
            Mlp = layerNorm ? MlpKind.Plain : MlpKind.Gated,
            Activation = layerNorm ? "gelu_pytorch_tanh" : "silu",
            Norm = layerNorm ? NormKind.LayerNorm : NormKind.RmsNorm,
            Positions = v.Kind is VisionEncoderKind.Qwen25Vl or VisionEncoderKind.Pixtral or VisionEncoderKind.Llama4 ? PositionKind.Rotary : PositionKind.Learned,
            Tensors = [],
        };
    }

    /// <summary>The decoder's settings for the tower: every image a sequence of its patches (Llama 4: every tile of it),
    /// attention dropout 0 in every tower, the residual in the compute dtype. Pixtral runs all images of the batch as one
    /// sequence whose block mask SDPA receives: its memory-efficient kernel keeps a copy padded to 16 columns per call
    /// unless the length is a multiple of 16 (<see cref="ActivationModel.SlidingMaskBias"/>).</summary>
    private static ActivationSettings TowerSettings(in ActivationSettings text, double images, ImageGeometry image, VisionEncoder v)
    {
        var s = text with { Batch = images * image.Sequences, Seq = image.Patches / image.Sequences, Dropout = 0, HiddenDropout = false, MaskEveryLayer = false };
        // The Qwen towers call attention per image (per window in windowed blocks, never longer): a forward without autograd
        // holds one image's scores at a time (what backward keeps, LayerSaved counts for every image).
        if (v.Kind is VisionEncoderKind.Qwen25Vl or VisionEncoderKind.Qwen3Vl) return s with { AttentionCallSeq = s.Seq };
        if (v.Kind != VisionEncoderKind.Pixtral) return s;
        double length = images * image.Patches;
        return s with { Batch = 1, Seq = length, MaskEveryLayer = length % 16 != 0 };
    }

    /// <summary>Pixtral's block-diagonal mask [1, 1, P, P] in the compute dtype (generate_block_attention_mask; none under
    /// flash_attention_2): alive while the tower runs and, when the tower trains and SDPA keeps it unpadded, until the
    /// tower's backward.</summary>
    private static void AddBlockMask(List<LedgerEntry> e, VisionEncoder v, in ActivationSettings s, bool trains, bool explain)
    {
        if (v.Kind != VisionEncoderKind.Pixtral || s.Kernel == AttentionKernel.Flash) return;
        bool kept = trains && s.Kernel == AttentionKernel.Sdpa && !s.MaskEveryLayer;
        e.Add(new(LineKind.VisionBlockMask, "vision tower: block attention mask (Pixtral)", kept ? WholeForwardAndBackward | Phase.VisionTower : Phase.VisionTower,
            s.C * s.Seq * s.Seq, explain ? $"P² × {B(s.C)} B, P = {N(s.Seq)} patches of every image in the batch{(kept ? "; every block's SDPA keeps it for backward" : "")}" : "",
            "transformers models/pixtral/modeling_pixtral.py generate_block_attention_mask"));
    }

    /// <summary>
    /// One block's saved bytes. The Qwen towers' fused qkv: v is a view of qkv's output, so attention keeps all 3·h of it
    /// besides the rotated q and k (new tensors), 2·h per patch more than separate projections; Qwen2.5-VL's windowed
    /// blocks' eager scores are each window's, the spans <see cref="ImageGeometry.WindowSpans"/> gives.
    /// </summary>
    private static double LayerSaved(ModelArchitecture tower, LayerProfile L, int index, in ActivationSettings s, VisionEncoder v, ImageGeometry image)
    {
        var saved = ActivationModel.Layer(tower, L, s);
        double total = saved.Total;
        bool attentionGrad = L.InputRequiresGrad || L.Norm1Trainable || L.AttnInAny;
        if (v.Kind is VisionEncoderKind.Siglip or VisionEncoderKind.Pixtral or VisionEncoderKind.Llama4 || !attentionGrad) return total;
        total += 2.0 * s.C * tower.HiddenSize * s.Tokens;
        if (s.Kernel == AttentionKernel.Eager && v.WindowSize > 0 && !v.FullAttentionBlocks.Contains(index))
        {
            double windowed = 0;
            foreach (long span in image.WindowSpans) windowed += ActivationModel.Layer(tower, L, s with { Seq = span }).AttentionScores;
            total += windowed - saved.AttentionScores;
        }
        return total;
    }

    /// <summary>What the tower's last stage keeps: SigLIP's post-norm (its input) and Gemma 3's projector norm (fp32
    /// upcast of the pooled tokens); each merger or projector of <see cref="HeadStages"/>: its norm's input (an RMSNorm's
    /// fp32 upcast, Qwen3-VL's LayerNorm input as is), each linear's input and adapters when needed, and the GELU's input
    /// before the last linear. Llama 4's stages run one after the other behind one post-norm (every patch and class
    /// token): the adapter's fc1 → GELU → fc2, then a GELU and the projector's linear_1, a gradient from the first
    /// reaching the second.</summary>
    private static double MergerSaved(List<LinearUse[]> stages, VisionEncoder v, in ActivationSettings s, ImageGeometry image, double images, bool gradIn, ModelProfile p)
    {
        double patches = images * image.Patches, tokens = images * image.Tokens, h = v.HiddenSize;
        if (v.Kind == VisionEncoderKind.Siglip)
        {
            double saved = gradIn ? s.R * patches * h + 4.0 * tokens * h : 0;
            // Gemma3MultiModalProjector's own parameters (--vision-tower projector or tower): the soft-embedding RMSNorm's
            // weight needs its fp32 normalized input (output * (1 + weight)), the projection matrix its input.
            if (Trains(p, "mm_soft_emb_norm")) saved += 4.0 * tokens * h;
            if (Trains(p, "mm_input_projection_weight")) saved += s.C * tokens * h;
            return saved;
        }
        bool sequential = v.Kind == VisionEncoderKind.Llama4;
        double norm = v.Kind is VisionEncoderKind.Qwen3Vl or VisionEncoderKind.Llama4 ? s.R : 4, bytes = 0;
        // A stage's own norm that trains (--vision-tower projector or tower) needs for its weight's gradient what its input's
        // does not give: an RMSNorm (Qwen2.5-VL's ln_q, Mistral 3's projector norm) the normalized tensor in the compute
        // dtype (weight * x_normed); a LayerNorm (Qwen3-VL's mergers) its input, already kept when the input needs a gradient.
        bool layerNorm = v.Kind == VisionEncoderKind.Qwen3Vl;
        double normWeight = sequential || !ProjectorNormTrains(p) ? 0 : layerNorm ? (gradIn ? 0 : s.R) : s.C;
        bool carried = gradIn;
        if (sequential && gradIn) bytes += norm * patches * h;
        foreach (var stage in stages)
        {
            if (gradIn && !sequential) bytes += norm * patches * h;
            bytes += normWeight * patches * h;
            bool grad = sequential ? carried : gradIn;
            for (int i = 0; i < stage.Length; i++)
            {
                if (i == stage.Length - 1 && grad) bytes += s.C * tokens * stage[i].In;
                double lora = 0;
                bytes += tokens * (ActivationModel.LinearInputs([stage[i]], stage[i].In, s, ref lora) + lora);
                grad |= stage[i].Trainable || stage[i].Lora;
            }
            carried = grad;
        }
        return bytes;
    }

    /// <summary>Some tensor of the image side trains or carries an adapter.</summary>
    private static bool VisionTrains(ModelProfile p) => AnyVision(p, (_, trains, adapted) => trains || adapted);

    /// <summary>A norm of the projector or mergers trains (their weights are 1-D).</summary>
    private static bool ProjectorNormTrains(ModelProfile p) => AnyVision(p, (t, trains, _) =>
        trains && t.Shape.Length == 1 && Selection.VisionTrainings.IsProjector(t) && !t.Name.EndsWith(".bias", StringComparison.Ordinal));

    /// <summary>A vision tensor whose name contains <paramref name="part"/> trains.</summary>
    private static bool Trains(ModelProfile p, string part) => AnyVision(p, (t, trains, _) => trains && t.Name.Contains(part, StringComparison.Ordinal));

    /// <summary>Some tensor of the image side (by the selection: trainable, adapted) matches <paramref name="holds"/>.</summary>
    private static bool AnyVision(ModelProfile p, Func<ParameterTensor, bool, bool, bool> holds)
    {
        var tensors = p.Architecture.Tensors;
        for (int i = 0; i < tensors.Count; i++)
            if (tensors[i].Role == TensorRole.Vision && holds(tensors[i], p.Selection.IsTrainableAt(i), p.Selection.IsAdaptedAt(i))) return true;
        return false;
    }

    /// <summary>The linears of the tower's last stages, in the order they run, a GELU before the last one of each: Qwen2.5-VL's
    /// merger (mlp.0, mlp.2); Qwen3-VL's merger and deepstack mergers (linear_fc1, linear_fc2); Mistral 3's projector
    /// (patch_merger.merging_layer, linear_1, linear_2); none for SigLIP (Gemma 3's projector is a bare matrix). Each
    /// linear as the selection trains or adapts it.</summary>
    private static List<LinearUse[]> HeadStages(ModelProfile p, VisionEncoder v)
    {
        var byModule = new Dictionary<string, LinearUse>(StringComparer.Ordinal);
        var tensors = p.Architecture.Tensors;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (t.VisionLinear && t.Name.EndsWith(".weight", StringComparison.Ordinal) && BlockOf(t.Module) is null)
                byModule[t.Module] = new LinearUse(t.Shape[1], t.Shape[0], p.Selection.IsTrainableAt(i), p.Selection.IsAdaptedAt(i));
        }
        var stages = new List<LinearUse[]>();
        void Add(params string[] suffixes)
        {
            var stage = suffixes.Select(x => byModule.FirstOrDefault(kv => kv.Key.EndsWith(x, StringComparison.Ordinal)).Value).ToArray();
            if (stage.All(u => u.In > 0)) stages.Add(stage);
        }
        switch (v.Kind)
        {
            case VisionEncoderKind.Qwen25Vl:
                Add("merger.mlp.0", "merger.mlp.2");
                break;
            case VisionEncoderKind.Qwen3Vl:
                Add(".merger.linear_fc1", ".merger.linear_fc2");
                for (int j = 0; j < v.DeepstackMergers; j++) Add($"deepstack_merger_list.{j}.linear_fc1", $"deepstack_merger_list.{j}.linear_fc2");
                break;
            case VisionEncoderKind.Pixtral:
                Add("patch_merger.merging_layer", "multi_modal_projector.linear_1", "multi_modal_projector.linear_2");
                break;
            case VisionEncoderKind.Llama4:
                Add("vision_adapter.mlp.fc1", "vision_adapter.mlp.fc2");
                Add("multi_modal_projector.linear_1");
                break;
        }
        return stages;
    }

    /// <summary>The tower's blocks from the selection: which linears train or carry adapters, which norms train, and from
    /// which block on the hidden state needs a gradient (a trainable patch or position embedding, or an earlier block).</summary>
    internal static IReadOnlyList<LayerProfile> TowerLayers(ModelProfile p, VisionEncoder v)
    {
        var layers = new LayerProfile[v.Depth];
        for (int i = 0; i < layers.Length; i++) layers[i] = new LayerProfile { NormCount = 2 };
        bool embeddingsTrain = false;
        var tensors = p.Architecture.Tensors;
        for (int ti = 0; ti < tensors.Count; ti++)
        {
            var t = tensors[ti];
            if (t.Role != TensorRole.Vision) continue;
            bool trains = p.Selection.IsTrainableAt(ti), lora = p.Selection.IsAdaptedAt(ti);
            if (BlockOf(t.Module) is not { } block || block >= layers.Length)
            {
                if (trains && (t.Module.Contains("patch_embed", StringComparison.Ordinal) || t.Module.Contains(".embeddings.", StringComparison.Ordinal)
                    || t.Name.EndsWith("class_embedding", StringComparison.Ordinal) || t.Name.EndsWith("positional_embedding_vlm", StringComparison.Ordinal)))
                    embeddingsTrain = true;
                continue;
            }
            var L = layers[block];
            string leaf = t.Module[(t.Module.LastIndexOf('.') + 1)..];
            if (t.VisionLinear && t.Name.EndsWith(".weight", StringComparison.Ordinal))
            {
                var use = new LinearUse(t.Shape[1], t.Shape[0], trains, lora);
                switch (leaf)
                {
                    case "q_proj" or "k_proj" or "v_proj" or "qkv": L.AttnIn.Add(use); break;
                    case "out_proj" or "proj" or "o_proj": L.AttnOut = use; break;
                    case "fc1" or "linear_fc1" or "gate_proj" or "up_proj": L.MlpIn.Add(use); break;
                    case "fc2" or "linear_fc2" or "down_proj": L.MlpDown = use; break;
                }
            }
            else if (leaf is "layer_norm1" or "norm1" or "attention_norm" or "input_layernorm") L.Norm1Trainable |= trains;
            else if (leaf is "layer_norm2" or "norm2" or "ffn_norm" or "post_attention_layernorm") L.Norm2Trainable |= trains;
            L.AnyTrainable |= trains || lora;
        }
        bool grad = embeddingsTrain;
        foreach (var L in layers)
        {
            L.AttnInAny = L.AttnIn.Any(u => u.Trainable || u.Lora);
            L.MlpInAny = L.MlpIn.Any(u => u.Trainable || u.Lora);
            L.InputRequiresGrad = grad;
            grad |= L.AnyTrainable;
        }
        return layers;
    }

    /// <summary>The block number in <c>…encoder.layers.N.…</c> (SigLIP) or <c>visual.blocks.N.…</c> (Qwen2.5-VL).</summary>
    private static int? BlockOf(string module)
    {
        foreach (var marker in (ReadOnlySpan<string>)[".layers.", ".blocks."])
        {
            int at = module.IndexOf(marker, StringComparison.Ordinal);
            if (at < 0) continue;
            var rest = module.AsSpan(at + marker.Length);
            int end = rest.IndexOf('.');
            if (end > 0 && int.TryParse(rest[..end], out int n)) return n;
        }
        return null;
    }

    private static string Images(double n) => n == 1 ? "1 image" : $"{N(n)} images";

    private static string TowerSource(VisionEncoder v) => v.Kind switch
    {
        VisionEncoderKind.Siglip => "transformers models/siglip/modeling_siglip.py (SiglipEncoderLayer), models/gemma3 (Gemma3MultiModalProjector)",
        VisionEncoderKind.Qwen25Vl => "transformers models/qwen2_5_vl/modeling_qwen2_5_vl.py (Qwen2_5_VLVisionBlock, window attention, PatchMerger)",
        VisionEncoderKind.Pixtral => "transformers models/pixtral/modeling_pixtral.py (PixtralAttentionLayer), models/mistral3 (Mistral3MultiModalProjector)",
        VisionEncoderKind.Llama4 => "transformers models/llama4/modeling_llama4.py (Llama4VisionEncoderLayer, Llama4VisionPixelShuffleMLP, Llama4MultiModalProjector)",
        _ => "transformers models/qwen3_vl/modeling_qwen3_vl.py (Qwen3VLVisionBlock, Qwen3VLVisionPatchMerger, deepstack mergers)",
    };
}
