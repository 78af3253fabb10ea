using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// Image inputs (<c>--images</c>): what the processors make of an image (expected sizes from Python's own round, half to
/// even, as Qwen2VLImageProcessor's smart_resize runs it), and what the tower adds to a step: gradients and optimizer
/// state for its adapters, its saved tensors (eager scores per image, windows, checkpointed block inputs), the moment it
/// runs, Gemma 3's image masks, and the errors that name the flag.
/// </summary>
public class ImageInputTests
{
    private static readonly ModelArchitecture Gemma = ModelCatalog.Get("google/gemma-3-4b-it");
    private static readonly ModelArchitecture Qwen = ModelCatalog.Get("Qwen/Qwen2.5-VL-7B-Instruct");
    private static readonly ModelArchitecture Qwen3 = ModelCatalog.Get("Qwen/Qwen3-VL-4B-Instruct");
    private static readonly ModelArchitecture Mistral = ModelCatalog.Get("mistralai/Mistral-Small-3.1-24B-Instruct-2503");

    private static Plan PlanOf(ModelArchitecture a, Job job, params Device[] devices) => Fit.Planner.Create(a, job, devices, suggestFixes: false);

    private static double Line(MemoryLedger l, LineKind kind) => l.Tensors.Where(e => e.Kind == kind).Sum(e => e.Bytes);

    private static Job WithTargets(Job job, params string[] targets) => job with { Lora = new LoraConfig { Targets = targets } };

    [Theory]
    [InlineData(1024, 1024, 1036, 1036, 5476)]
    [InlineData(640, 480, 644, 476, 1564)]
    [InlineData(4000, 3000, 4004, 2996, 61204)]
    // 48 M pixels exceed max_pixels (12,845,056): scaled down, each side floored to a multiple of 28.
    [InlineData(8000, 6000, 4116, 3080, 64680)]
    // Under min_pixels (3,136): scaled up, each side ceiled.
    [InlineData(20, 20, 56, 56, 16)]
    // 70 / 28 = 2.5 rounds to 2 (half to even): 56, not 84.
    [InlineData(70, 70, 56, 56, 16)]
    public void Qwen25Vl_resizes_as_its_processor_and_merges_four_patches_per_token(int width, int height, int w, int h, long patches)
    {
        var image = Qwen.Vision!.Image(width, height);
        Assert.Equal((w, h, patches), (image.Width, image.Height, image.Patches));
        Assert.Equal(patches / 4, image.Tokens);
        // <|vision_start|> and <|vision_end|> around the image's tokens.
        Assert.Equal(patches / 4 + 2, image.SequenceTokens);
        // One row of channels × temporal_patch_size × patch² per patch: 3 × 2 × 14 × 14.
        Assert.Equal(patches * 1176, image.PixelElements);
        // The window attention's spans cover every patch once.
        Assert.Equal(patches, image.WindowSpans.Sum());
    }

    [Theory]
    [InlineData(1024, 1024, 1024, 1024, 4096)]
    [InlineData(1920, 1080, 1920, 1088, 8160)]
    // Over 16,777,216 pixels: scaled down to multiples of 32.
    [InlineData(6000, 4000, 4992, 3328, 64896)]
    // Under 65,536 pixels: scaled up.
    [InlineData(200, 200, 256, 256, 256)]
    public void Qwen3Vl_resizes_to_multiples_of_32_within_its_checkpoints_pixel_bounds(int width, int height, int w, int h, long patches)
    {
        var image = Qwen3.Vision!.Image(width, height);
        Assert.Equal((w, h, patches), (image.Width, image.Height, image.Patches));
        Assert.Equal((patches / 4, patches / 4 + 2), (image.Tokens, image.SequenceTokens));
        // 3 × 2 × 16 × 16 values per patch; every block attends over the whole image.
        Assert.Equal(patches * 1536, image.PixelElements);
        Assert.Equal([patches], image.WindowSpans);
    }

    [Fact]
    public void Qwen3Vl_keeps_its_deepstack_features_and_every_blocks_full_attention()
    {
        var job = new Job { Seq = 2048, Images = 1, ImageWidth = 1024, ImageHeight = 1024 };
        var ledger = PlanOf(Qwen3, job).Ledger;
        // The merger's features and the three deepstack mergers' ones, 1,024 tokens × 2,560 × 2 B each.
        Assert.Equal(4 * 1024.0 * 2560 * 2, Line(ledger, LineKind.VisionImageFeatures));
        Assert.True(Line(ledger, LineKind.VisionTowerActivations) > 0);
        double Tower(AttentionKernel k) => Line(PlanOf(Qwen3, job with { Attention = k }).Ledger, LineKind.VisionTowerActivations);
        // 24 blocks, 16 heads over 4,096 patches: eager's fp32 softmax and bf16 copy, less SDPA's output and log-sum-exp.
        double scores = 24.0 * 16 * 4096 * 4096 * 6, sdpaOnly = 24.0 * 4096 * (1024 * 2 + 16 * 4);
        Assert.Equal(scores - sdpaOnly, Tower(AttentionKernel.Eager) - Tower(AttentionKernel.Sdpa), 1e-9 * scores);
        // The mergers train under all-linear: without them (attention-only targets on the decoder) the tower saves nothing.
        var frozen = PlanOf(Qwen3, WithTargets(job, "q_proj", "k_proj", "v_proj", "o_proj")).Ledger;
        Assert.Equal(0, Line(frozen, LineKind.VisionTowerActivations));
    }

    [Theory]
    [InlineData(1024, 1024, 1036, 1036, 5476, 1406)]
    // Longest edge over 1,540: scaled down (floor), then up to whole 28-pixel cells.
    [InlineData(2000, 1000, 1540, 784, 6160, 1568)]
    [InlineData(3000, 4000, 1176, 1540, 9240, 2365)]
    [InlineData(896, 896, 896, 896, 4096, 1056)]
    public void Mistral3_resizes_to_whole_merged_patches_with_a_break_token_per_row(int width, int height, int w, int h, long patches, long sequence)
    {
        var image = Mistral.Vision!.Image(width, height);
        Assert.Equal((w, h, patches, patches / 4, sequence), (image.Width, image.Height, image.Patches, image.Tokens, image.SequenceTokens));
        // Rows of [IMG] tokens, each closed by [IMG_BREAK] (the last by [IMG_END]).
        Assert.Equal(image.Tokens + h / 28, image.SequenceTokens);
        Assert.Equal(3L * w * h, image.PixelElements);
    }

    [Fact]
    public void Pixtrals_sdpa_keeps_a_padded_copy_of_its_block_mask_in_every_block_unless_the_patches_align()
    {
        var job = new Job { Seq = 2048, Images = 1, ImageWidth = 1024, ImageHeight = 1024 };
        double Tower(Job j) => Line(PlanOf(Mistral, j).Ledger, LineKind.VisionTowerActivations);
        // 5,476 patches is not a multiple of 16: SDPA's memory-efficient kernel pads the head-expanded mask per call
        // (16 heads × 5,476 × 5,488 × 2 B per block); flash_attention_2 takes no mask.
        double padded = 24.0 * 16 * 5476 * 5488 * 2;
        Assert.Equal(padded, Tower(job) - Tower(job with { Attention = AttentionKernel.Flash }), 1e-9 * padded);
        var sdpa = PlanOf(Mistral, job).Ledger;
        Assert.Equal(2.0 * 5476 * 5476, Line(sdpa, LineKind.VisionBlockMask));
        Assert.Equal(Phase.VisionTower, sdpa.Tensors.Single(e => e.Kind == LineKind.VisionBlockMask).Phases);
        // 896 × 896 is 4,096 patches: aligned, so every block keeps the one mask, alive until the tower's backward.
        var aligned = job with { ImageWidth = 896, ImageHeight = 896, Seq = 1100 };
        Assert.Equal(0, Tower(aligned) - Tower(aligned with { Attention = AttentionKernel.Flash }), 1.0);
        var mask = PlanOf(Mistral, aligned).Ledger.Tensors.Single(e => e.Kind == LineKind.VisionBlockMask);
        Assert.Equal(2.0 * 4096 * 4096, mask.Bytes);
        Assert.True((mask.Phases & Phase.BackwardEnd) != 0);
        // Two images are one sequence of 2 × 5,476 patches: eager scores grow with its square.
        double eager1 = Tower(job with { Attention = AttentionKernel.Eager }), eager2 = Tower(job with { Attention = AttentionKernel.Eager, Images = 2, Seq = 4096 });
        Assert.True(eager2 > 3.5 * eager1);
    }

    [Fact]
    public void Qwen25Vl_windows_are_four_by_four_merged_cells_the_last_row_and_column_cut_short()
    {
        // 1036 px: 74 patches, 37 merged cells a side = 9 windows of 4 cells and one of 1.
        var spans = Qwen.Vision!.Image(1024, 1024).WindowSpans;
        Assert.Equal(100, spans.Count);
        Assert.Equal(81, spans.Count(s => s == 64));
        Assert.Equal(18, spans.Count(s => s == 16));
        Assert.Equal(1, spans.Count(s => s == 4));
    }

    [Fact]
    public void Gemma3_resizes_every_image_to_896_and_pools_it_to_256_soft_tokens()
    {
        var image = Gemma.Vision!.Image(null, null);
        Assert.Equal((896, 896, 4096L, 256L), (image.Width, image.Height, image.Patches, image.Tokens));
        // \n\n, <start_of_image>, 256 soft tokens, <end_of_image>, \n\n.
        Assert.Equal(260, image.SequenceTokens);
        Assert.Equal(3L * 896 * 896, image.PixelElements);
    }

    [Fact]
    public void With_images_the_towers_adapters_get_gradients_and_optimizer_state()
    {
        var text = PlanOf(Gemma, new Job { Seq = 1024 });
        var image = PlanOf(Gemma, new Job { Seq = 1024, Images = 1 });
        var sel = image.Selection;
        Assert.True(sel.VisionAdapterParameters > 0);
        Assert.Equal(sel.SteppedParameters * 4, Line(text.Ledger, LineKind.Gradients));
        Assert.Equal(sel.TrainableParameters * 4, Line(image.Ledger, LineKind.Gradients));
        Assert.Equal(2 * sel.TrainableParameters * 4, Line(image.Ledger, LineKind.OptimizerState));
        Assert.Equal(4.0 * 3 * 896 * 896, Line(image.Ledger, LineKind.VisionPixelValues));
        Assert.Equal(2.0 * 256 * Gemma.HiddenSize, Line(image.Ledger, LineKind.VisionImageFeatures));
        Assert.True(Line(image.Ledger, LineKind.VisionTowerActivations) > 0);
        // Image features that need a gradient make the decoder's first norm keep its fp32 input.
        Assert.Equal(4.0 * 1024 * Gemma.HiddenSize, Line(image.Ledger, LineKind.VisionDecoderInputGrad));
        // While the tower runs: its own saved tensors and the step's persistent memory, nothing of the decoder's forward.
        Phase At(LineKind kind) => image.Ledger.Tensors.Single(e => e.Kind == kind).Phases;
        Assert.True((At(LineKind.VisionTowerActivations) & Phase.VisionTower) != 0);
        Assert.True((At(LineKind.WeightsFrozen) & Phase.VisionTower) != 0);
        Assert.True((At(LineKind.VisionDecoderInputGrad) & Phase.VisionTower) == 0);
        Assert.True((At(LineKind.ActivationsMlp) & Phase.VisionTower) == 0);
        // A text plan has none of it, and no moment for the tower.
        Assert.DoesNotContain(text.Ledger.Tensors, e => e.Kind.ToString().StartsWith("Vision", StringComparison.Ordinal));
        Assert.DoesNotContain(text.Ledger.Tensors, e => (e.Phases & Phase.VisionTower) != 0);
        Assert.True(image.Ledger.TotalBytes > text.Ledger.TotalBytes);
        // An image step is not replayed: an assumed reserve stands for fragmentation.
        Assert.Null(image.Ledger.Replay);
        Assert.Contains(image.Ledger.Runtime, e => e.Kind == LineKind.AllocatorReserve);
    }

    [Fact]
    public void Full_finetuning_keeps_the_tower_frozen_and_says_so()
    {
        // As LLaMA-Factory's freeze_vision_tower default: the tower runs without recording, the decoder trains in full.
        var plan = PlanOf(Gemma, new Job { Seq = 1024, Images = 1, Method = TrainingMethod.Full });
        Assert.Equal(0, Line(plan.Ledger, LineKind.VisionTowerActivations));
        Assert.True(Line(plan.Ledger, LineKind.VisionTowerTemporaries) > 0);
        var warnings = JsonNode.Parse(PlanJson.Serialize(plan))!["model"]!["warnings"]!.AsArray().Select(w => (string)w!).ToList();
        Assert.Contains(warnings, w => w.Contains("keep the vision tower frozen", StringComparison.Ordinal));
    }

    [Fact]
    public void A_tower_without_adapters_saves_nothing_and_only_runs_one_block_at_a_time()
    {
        // Qwen2.5-VL's tower names its projections qkv / proj: attention-only targets leave it frozen.
        var job = WithTargets(new Job { Seq = 2048, Images = 1, ImageWidth = 1024, ImageHeight = 1024 }, "q_proj", "k_proj", "v_proj", "o_proj");
        var plan = PlanOf(Qwen, job);
        Assert.Equal(0, plan.Selection.VisionAdapterParameters);
        Assert.Equal(0, Line(plan.Ledger, LineKind.VisionTowerActivations));
        Assert.Equal(0, Line(plan.Ledger, LineKind.VisionDecoderInputGrad));
        Assert.True(Line(plan.Ledger, LineKind.VisionTowerTemporaries) > 0);
        var text = PlanOf(Qwen, job with { Images = 0, ImageWidth = null, ImageHeight = null });
        // The decoder's peak is the text step's, plus the images' inputs and features alive beside it.
        double inputs = Line(plan.Ledger, LineKind.VisionPixelValues) + Line(plan.Ledger, LineKind.VisionImageFeatures);
        Assert.Equal(text.Ledger.PeakBytes + inputs, plan.Ledger.PeakBytes, 0.001 * plan.Ledger.PeakBytes);
    }

    [Fact]
    public void The_towers_saved_tensors_grow_with_the_images_and_eager_keeps_every_images_scores()
    {
        double Tower(Job job) => Line(PlanOf(Gemma, job).Ledger, LineKind.VisionTowerActivations);
        var one = new Job { Seq = 1024, Images = 1 };
        double sdpa = Tower(one);
        Assert.Equal(2 * sdpa, Tower(one with { Images = 2, Seq = 2048 }), 1e-9 * sdpa);
        // SigLIP attends over every patch of the image: eager keeps each block's fp32 softmax and its bf16 copy, 16 heads ×
        // 4,096², where SDPA keeps its output (h × 2 B) and fp32 log-sum-exp (16 heads × 4 B) per patch instead.
        double scores = 27.0 * 16 * 4096 * 4096 * (4 + 2), sdpaOnly = 27.0 * 4096 * (1152 * 2 + 16 * 4);
        Assert.Equal(scores - sdpaOnly, Tower(one with { Attention = AttentionKernel.Eager }) - sdpa, 1e-9 * scores);
    }

    [Fact]
    public void Qwen25Vl_eager_scores_are_per_window_except_in_the_full_attention_blocks()
    {
        var job = new Job { Seq = 2048, Images = 1, ImageWidth = 1024, ImageHeight = 1024 };
        double Tower(AttentionKernel k) => Line(PlanOf(Qwen, job with { Attention = k }).Ledger, LineKind.VisionTowerActivations);
        var spans = Qwen.Vision!.Image(1024, 1024).WindowSpans;
        double perPair = 16 * (4 + 2);
        double full = 4 * 5476.0 * 5476 * perPair, windowed = 28 * spans.Sum(s => (double)s * s) * perPair;
        // Both keep the rotated q and k and the qkv output v views; SDPA also keeps its output and fp32 log-sum-exp.
        double sdpaOnly = 32.0 * 5476 * (1280 * 2 + 16 * 4);
        Assert.Equal(full + windowed - sdpaOnly, Tower(AttentionKernel.Eager) - Tower(AttentionKernel.Sdpa), 1e-9 * full);
    }

    [Fact]
    public void Qwen_towers_hold_one_images_eager_scores_at_a_time()
    {
        // Qwen2_5_VLVisionAttention splits q, k, v by cu_seqlens and calls eager attention per image (per window in the
        // windowed blocks): a forward without autograd holds one image's 16 heads × 5,476² scores, whatever the batch.
        var job = new Job { Task = JobTask.Infer, Seq = 4 * 1371 + 64, Images = 4, ImageWidth = 1024, ImageHeight = 1024, Attention = AttentionKernel.Eager };
        double Temporaries(int images) => Line(PlanOf(Qwen, job with { Images = images }).Ledger, LineKind.VisionTowerTemporaries);
        double oneImageScores = 16.0 * 5476 * 5476 * (2 + 4 + 4);
        Assert.InRange(Temporaries(4), oneImageScores, 1.5 * oneImageScores);
        // Four images add their q, k, v and residual streams, not three more images' scores.
        Assert.InRange(Temporaries(4) - Temporaries(1), 0, 0.25 * oneImageScores);
    }

    [Fact]
    public void Checkpointing_keeps_each_tower_blocks_input()
    {
        var plan = PlanOf(Gemma, new Job { Seq = 1024, Images = 1, Checkpointing = Checkpointing.Full });
        // 27 block inputs, SigLIP's post-norm input (4,096 × 1,152 × 2 B) and the projector norm's fp32 input (256 × 1,152 × 4 B).
        double expected = 27.0 * 4096 * 1152 * 2 + 4096.0 * 1152 * 2 + 256.0 * 1152 * 4;
        Assert.Equal(expected, Line(plan.Ledger, LineKind.VisionTowerActivations));
        Assert.Contains("checkpointed", plan.Ledger.Tensors.Single(e => e.Kind == LineKind.VisionTowerActivations).Name);
    }

    [Fact]
    public void A_frozen_towers_eager_scores_can_be_the_steps_peak()
    {
        // SigLIP names its MLP fc1/fc2: down_proj adapts only the decoder, so the tower runs without autograd.
        var job = new Job { Seq = 1040, Images = 4, Attention = AttentionKernel.Eager, Lora = new LoraConfig { Targets = ["down_proj"], Dropout = 0 } };
        var ledger = PlanOf(Gemma, job).Ledger;
        Assert.Equal(Phase.VisionTower, ledger.PeakPhase);
        // At that moment: what lives across the whole step, and one tower block's temporaries (4 images × 16 heads × 4,096² scores).
        Assert.Equal(ledger.Tensors.Where(e => (e.Phases & Phase.VisionTower) != 0).Sum(e => e.Bytes), ledger.PeakBytes, 1.0);
        Assert.True(Line(ledger, LineKind.VisionTowerTemporaries) > 4 * 16.0 * 4096 * 4096 * (2 + 4 + 4));
        Assert.DoesNotContain(ledger.Tensors, e => (e.Phases & Phase.VisionTower) != 0 && e.Kind == LineKind.ActivationsMlp);
    }

    [Fact]
    public void A_parallel_layout_sums_the_vision_towers_moment_too()
    {
        var job = new Job { Seq = 1040, Images = 4, Attention = AttentionKernel.Eager, Lora = new LoraConfig { Targets = ["down_proj"], Dropout = 0 } };
        var plan = PlanOf(Gemma, job);
        Assert.Equal(Phase.VisionTower, plan.Ledger.PeakPhase);
        var parallel = Afinado.Planner.Parallel.PlanBridge.FromPlan(plan);
        foreach (var sharding in new[] { Afinado.Planner.Parallel.Sharding.None, Afinado.Planner.Parallel.Sharding.Zero3 })
        {
            var layout = new Afinado.Planner.Parallel.ParallelLayout { Gpus = 2, Sharding = sharding }.Validate(Gemma);
            var ledger = Afinado.Planner.Parallel.ParallelMemory.Plan(parallel, layout);
            // Each rank runs the tower on its own micro-batch: the tower's temporaries beside every line held through the
            // whole forward and backward, and no decoder activation (the tower runs before the first decoder layer).
            Assert.Equal(Phase.VisionTower, ledger.GpuPeakPhase);
            var atTower = ledger.Gpu.Where(e => (e.Phases & Phase.VisionTower) != 0).ToList();
            Assert.Contains(atTower, e => e.Kind == LineKind.VisionTowerTemporaries);
            Assert.Contains(atTower, e => e.Kind == LineKind.CudaContext);
            Assert.Contains(atTower, e => e.Kind == LineKind.AllocatorReserve);
            Assert.DoesNotContain(atTower, e => e.Kind is LineKind.ActivationsMlp or LineKind.VisionDecoderInputGrad or LineKind.DdpReducerBuckets);
            Assert.Equal(atTower.Sum(e => e.Bytes), ledger.GpuPeakBytes, 1.0);
            // The tower's temporaries alone exceed every text moment's difference: without the moment the peak would be lower.
            Assert.True(ledger.GpuPeakBytes > Afinado.Planner.Memory.MemoryPeak.Of(ledger.Gpu, Phases.StepMoments).Bytes);
            // The table and JSON name a whole-step line "always" and the tower's own lines by their moment.
            Assert.Equal("always", ledger.Gpu.Single(e => e.Kind == LineKind.CudaContext).Phases.StepName());
            Assert.Equal("vision tower", ledger.Gpu.Single(e => e.Kind == LineKind.VisionTowerTemporaries).Phases.StepName());
        }
    }

    [Fact]
    public void Gemma3s_image_masks_mask_every_decoder_layer_under_sdpa()
    {
        var job = new Job { Seq = 4096, Images = 1 };
        var text = PlanOf(Gemma, job with { Images = 0 }).Ledger;
        var image = PlanOf(Gemma, job).Ledger;
        // Without images only the 29 sliding layers (window 1,024) keep a mask bias; with them all 34 do.
        double bias = 2.0 * 4096 * 4096;
        Assert.Equal(29 * bias, Line(text, LineKind.ActivationsAttentionScores));
        Assert.Equal(34 * bias, Line(image, LineKind.ActivationsAttentionScores));
        // Full and sliding boolean masks, built per sequence (the sliding-window line holds one already).
        Assert.Equal(2.0 * 4096 * 4096 - 4096.0 * 4096, Line(image, LineKind.VisionImageMasks));
        Assert.Equal(0, Line(PlanOf(Gemma, job with { Attention = AttentionKernel.Flash }).Ledger, LineKind.VisionImageMasks));
    }

    [Fact]
    public void Inference_runs_the_tower_before_the_prefill()
    {
        var ledger = PlanOf(Qwen, new Job { Task = JobTask.Infer, Seq = 2048, Images = 1, ImageWidth = 1024, ImageHeight = 1024 }).Ledger;
        Assert.Equal(0, Line(ledger, LineKind.VisionTowerActivations));
        var features = ledger.Tensors.Single(e => e.Kind == LineKind.VisionImageFeatures);
        Assert.Equal(Phase.Prefill, features.Phases);
        Assert.True(ledger.BytesAt(Phase.VisionTower) > Line(ledger, LineKind.VisionTowerTemporaries));
        Assert.Contains(ledger.Tensors, e => e.Kind == LineKind.VisionPixelValues && (e.Phases & Phase.Decode) != 0);
    }

    [Fact]
    public void The_largest_sequence_holds_the_images()
    {
        var job = new Job { Images = 1, ImageWidth = 1024, ImageHeight = 1024 };
        var plan = Fit.Planner.Create(Qwen, job with { Seq = 2048 }, [GpuCatalog.Get("h100")], maxParameter: "seq", suggestFixes: false);
        Assert.InRange(plan.Search!.Value, 1371, int.MaxValue);
        // On a card too small for even the images alone, the answer is 0, not a sequence shorter than they are.
        var small = Fit.Planner.Create(Qwen, job with { Seq = 2048 }, [GpuMemory.Parse("16GiB")], maxParameter: "seq", suggestFixes: false);
        Assert.Equal(0, small.Search!.Value);
    }

    [Fact]
    public void Full_finetuning_trains_the_projector_or_the_tower_when_asked()
    {
        var job = new Job { Seq = 2048, Images = 1, ImageWidth = 1024, ImageHeight = 1024, Method = TrainingMethod.Full };
        Plan With(VisionTraining v) => PlanOf(Qwen, job with { VisionTower = v });
        var frozen = With(VisionTraining.Frozen);
        var projector = With(VisionTraining.Projector);
        var tower = With(VisionTraining.Tower);
        long vision = Qwen.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements);
        long merger = Qwen.Tensors.Where(t => t.Name.StartsWith("visual.merger.", StringComparison.Ordinal)).Sum(t => t.Elements);
        Assert.True(merger > 0);
        // LLaMA-Factory's defaults: the text model trains, the tower and its merger stay frozen.
        Assert.Equal(Qwen.ParameterCount - vision, frozen.Selection.TrainableBaseParameters);
        Assert.Equal(Qwen.ParameterCount - vision + merger, projector.Selection.TrainableBaseParameters);
        Assert.Equal(Qwen.ParameterCount, tower.Selection.TrainableBaseParameters);
        // bf16 gradients for whatever trains.
        Assert.Equal(2.0 * Qwen.ParameterCount, Line(tower.Ledger, LineKind.Gradients));
        Assert.Equal(2.0 * (Qwen.ParameterCount - vision + merger), Line(projector.Ledger, LineKind.Gradients));
        // The frozen tower runs without recording; the trained merger keeps its own inputs (no block saves anything);
        // the trained tower keeps every block's saved tensors too.
        Assert.Equal(0, Line(frozen.Ledger, LineKind.VisionTowerActivations));
        // The merger over 5,476 patches (h 1,280) merged 4 to 1 into 1,369 rows of 5,120, all bf16: ln_q's normalized
        // output for its weight, mlp.0's input, the GELU's input and mlp.2's input.
        double merged = Line(projector.Ledger, LineKind.VisionTowerActivations);
        Assert.Equal(2.0 * 5476 * 1280 + 3 * 2.0 * 1369 * 5120, merged);
        Assert.True(merged < 0.01 * Line(tower.Ledger, LineKind.VisionTowerActivations));
        Assert.Contains("0 of 32 blocks", projector.Ledger.Tensors.Single(e => e.Kind == LineKind.VisionTowerActivations).Formula);
        Assert.True(tower.Ledger.PeakBytes > projector.Ledger.PeakBytes && projector.Ledger.PeakBytes > frozen.Ledger.PeakBytes);
        // Only a plan that keeps the tower frozen says so.
        Assert.Contains(Qwen.PlanWarnings(1, frozen.Job.TowerFrozenByMethod), w => w.Contains("--vision-tower tower", StringComparison.Ordinal));
        Assert.DoesNotContain(Qwen.PlanWarnings(1, tower.Job.TowerFrozenByMethod), w => w.Contains("--vision-tower tower", StringComparison.Ordinal));
    }

    [Fact]
    public void Gemma3s_trained_projector_keeps_its_norms_and_matmuls_inputs()
    {
        var plan = PlanOf(Gemma, new Job { Seq = 1024, Images = 1, Method = TrainingMethod.Full, VisionTower = VisionTraining.Projector });
        // 256 pooled tokens × 1,152: the soft-embedding norm's fp32 output (for its weight) and the projection's bf16 input.
        Assert.Equal(256.0 * 1152 * (4 + 2), Line(plan.Ledger, LineKind.VisionTowerActivations));
        Assert.Equal(Gemma.Tensors.Where(t => t.Name.Contains("multi_modal_projector", StringComparison.Ordinal)).Sum(t => t.Elements),
            plan.Selection.TrainableBaseParameters - Gemma.Tensors.Where(t => t.Role != TensorRole.Vision).Sum(t => t.Elements));
    }

    private static readonly ModelArchitecture Scout = ModelCatalog.Get("meta-llama/Llama-4-Scout-17B-16E");

    [Fact]
    public void Llama4_canvas_is_get_best_fits_choice()
    {
        // image_processing_llama4_fast.py's own example: a 200 × 300 image among 224-pixel canvases of at most 3 tiles
        // (224×672, 672×224, 224×448, 448×224, 224×224) upscales by 1.12 onto 224 × 448, the smaller of the two at 1.12.
        Assert.Equal((1, 2), VisionEncoder.Llama4Canvas(200, 300, 224, 3));
        // 336-pixel tiles, at most 16: 1024² upscales by 1.3125 only onto 4 × 4 tiles (every other grid has a side under 1024).
        Assert.Equal((4, 4), VisionEncoder.Llama4Canvas(1024, 1024, 336, 16));
        // 1920 × 1080 cannot upscale (that needs 4 rows × 6 columns); the least downscale is 3 × 5 tiles: min(1008/1080, 1680/1920) = 0.875.
        Assert.Equal((3, 5), VisionEncoder.Llama4Canvas(1080, 1920, 336, 16));
        // Small images take one tile: 300 × 200 upscales by 1.12 onto 1 × 1, 2 × 1 and more; the least area wins.
        Assert.Equal((1, 1), VisionEncoder.Llama4Canvas(200, 300, 336, 16));
    }

    [Theory]
    // One tile: <|image_start|>, <|image|>, 144 <|patch|>, <|image_end|>; no global tile.
    [InlineData(336, 336, 1, 1, 147)]
    [InlineData(300, 200, 1, 1, 147)]
    // 4 × 4 tiles and a global one: 4 rows of (4 × 144 patches + 3 x-separators + a y-separator), then the global tile's 147.
    [InlineData(1024, 1024, 16, 17, 1 + 4 * (4 * 144 + 3 + 1) + 146)]
    // 3 rows × 5 columns and a global tile.
    [InlineData(1920, 1080, 15, 16, 1 + 3 * (5 * 144 + 4 + 1) + 146)]
    public void Llama4_images_are_tiles_of_577_patches_and_144_tokens(int width, int height, int tiles, int sequences, int text)
    {
        var image = Scout.Vision!.Image(width, height);
        Assert.Equal(tiles, (long)image.Width / 336 * (image.Height / 336));
        Assert.Equal(sequences, image.Sequences);
        // (336 / 14)² patches and the class token per tile; the pixel shuffle (ratio 0.5) leaves 576 / 4 = 144 features.
        Assert.Equal(sequences * 577L, image.Patches);
        Assert.Equal(sequences * 144L, image.Tokens);
        Assert.Equal(text, image.SequenceTokens);
        Assert.Equal(sequences * 3L * 336 * 336, image.PixelElements);
    }

    [Fact]
    public void Llama4_runs_every_tile_as_its_own_sequence_through_the_tower()
    {
        var job = WithTargets(new Job { Seq = 4096, Images = 1, ImageWidth = 1024, ImageHeight = 1024 }, "q_proj", "v_proj");
        var plan = PlanOf(Scout, job);
        // The processor normalizes in bfloat16: 17 tiles × 3 × 336² values × 2 B.
        Assert.Equal(2.0 * 17 * 3 * 336 * 336, Line(plan.Ledger, LineKind.VisionPixelValues));
        // 2,448 image features in the text model's width (5,120), bf16.
        Assert.Equal(2.0 * 2448 * 5120, Line(plan.Ledger, LineKind.VisionImageFeatures));
        Assert.True(plan.Selection.VisionAdapterParameters > 0);
        // Each tile attends over its own 577 positions: eager keeps 17 × 16 heads × 577² fp32 scores and their bf16 copy
        // per block, where SDPA keeps its output (h 1,408 × 2 B) and fp32 log-sum-exp (16 heads × 4 B) per position.
        double Tower(AttentionKernel k) => Line(PlanOf(Scout, job with { Attention = k }).Ledger, LineKind.VisionTowerActivations);
        double scores = 34.0 * 17 * 16 * 577 * 577 * (4 + 2), sdpaOnly = 34.0 * 17 * 577 * (1408 * 2 + 16 * 4);
        Assert.Equal(scores - sdpaOnly, Tower(AttentionKernel.Eager) - Tower(AttentionKernel.Sdpa), 1e-9 * scores);
        // The tower runs first, so it is differentiated last: its saved tensors live from its forward to the end of backward.
        Assert.Equal(Phase.VisionTower | Phase.Forward | Phase.ForwardLastLayer | Phase.BackwardStart | Phase.BackwardHead | Phase.BackwardEnd,
            plan.Ledger.Tensors.Single(e => e.Kind == LineKind.VisionTowerActivations).Phases);
    }

    [Theory]
    [InlineData("meta-llama/Llama-3.1-8B", 1, null, null, 2048, "images", "text model")]
    [InlineData("meta-llama/Llama-4-Scout-17B-16E", 1, null, null, 2048, "image_size", "up to 16 tiles of 336 × 336")]
    [InlineData("meta-llama/Llama-4-Scout-17B-16E", 1, 1024, 1024, 2048, "seq", "2,467 tokens each")]
    [InlineData("mistralai/Mistral-Small-3.1-24B-Instruct-2503", 1, null, null, 2048, "image_size", "keeps each image's resolution")]
    [InlineData("Qwen/Qwen3-VL-4B-Instruct", 1, null, null, 2048, "image_size", "keeps each image's resolution")]
    [InlineData("Qwen/Qwen2.5-VL-7B-Instruct", 1, null, null, 2048, "image_size", "keeps each image's resolution")]
    [InlineData("Qwen/Qwen2.5-VL-7B-Instruct", 2, 1024, 1024, 2048, "seq", "cannot hold 2 image(s)")]
    [InlineData("Qwen/Qwen2.5-VL-7B-Instruct", 1, 10, 5000, 2048, "image_size", "aspect ratio")]
    [InlineData("google/gemma-3-4b-it", 1, 640, 480, 2048, "image_size", "resizes every image")]
    [InlineData("google/gemma-3-4b-it", 0, 640, 480, 2048, "image_size", "has none")]
    [InlineData("google/gemma-3-4b-it", -1, null, null, 2048, "images", "out of range")]
    [InlineData("google/gemma-3-4b-it", 1, null, null, 2048, "vision_tower", "full and freeze finetuning", "tower")]
    [InlineData("google/gemma-3-4b-it", 0, null, null, 2048, "vision_tower", "a text step runs nothing", "tower", "full")]
    public void Bad_image_inputs_name_the_parameter(string model, int images, int? width, int? height, int seq, string parameter, string problem,
        string vision = "frozen", string method = "lora")
    {
        var job = new Job { Images = images, ImageWidth = width, ImageHeight = height, Seq = seq, VisionTower = VisionTrainings.Parse(vision), Method = TrainingMethods.Parse(method) };
        var error = Assert.Throws<InputError>(() => Fit.Planner.Create(ModelCatalog.Get(model), job, [], suggestFixes: false));
        Assert.Equal(parameter, error.Parameter?.Name);
        Assert.Contains(problem, error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Image_inputs_are_refused_on_the_cpu_and_for_other_learning_rules()
    {
        var cpu = Assert.Throws<InputError>(() => Fit.Planner.Create(Gemma, new Job { Images = 1, Precision = Precision.Fp32 }, [Device.Cpu(64L << 30)]));
        Assert.Equal("images", cpu.Parameter?.Name);
        var es = Assert.Throws<InputError>(() => Fit.Planner.Create(Gemma, new Job { Images = 1, Rule = LearningRule.Es }, []));
        Assert.Equal("images", es.Parameter?.Name);
    }

    [Fact]
    public void The_plan_json_describes_the_images()
    {
        var plan = PlanOf(Qwen, new Job { Seq = 4096, Images = 2, ImageWidth = 640, ImageHeight = 480 });
        var json = JsonNode.Parse(PlanJson.Serialize(plan))!;
        Assert.Equal(2, (int)json["job"]!["images"]!);
        Assert.Equal(644, (int)json["job"]!["image"]!["width"]!);
        Assert.Equal(393, (int)json["job"]!["image"]!["sequence_tokens"]!);
        Assert.True((long)json["phases"]!["vision tower"]! > 0);
        Assert.Contains(json["model"]!["warnings"]!.AsArray(), w => ((string)w!).StartsWith("image inputs planned", StringComparison.Ordinal));
    }
}
