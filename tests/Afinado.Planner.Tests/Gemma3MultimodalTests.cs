using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests;

/// <summary>
/// gemma3 (Gemma3ForConditionalGeneration): the gemma3_text decoder under model.language_model, a SigLIP tower under
/// model.vision_tower.vision_model and the multi_modal_projector, read from a config whose text_config is sparse.
/// </summary>
public class Gemma3MultimodalTests
{
    private static ParameterTensor Tensor(ModelArchitecture a, string name) => Assert.Single(a.Tensors, t => t.Name == name);

    private static JsonObject Config() => JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-3-4b-it"))!.AsObject();

    private static InputError Bad(JsonObject json) => Assert.Throws<InputError>(() => HfConfigReader.Parse(json.ToJsonString(), "cfg.json"));

    [Fact]
    public void Sparse_text_config_takes_gemma3_text_defaults()
    {
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        Assert.Equal("gemma3", a.ModelType);
        // text_config names hidden_size, intermediate_size, layers, rope_scaling and sliding_window; the rest are defaults.
        Assert.Equal((262_208, 2560, 34, 8, 4, 256), (a.VocabSize, a.HiddenSize, a.NumLayers, a.NumHeads, a.NumKvHeads, a.HeadDim));
        Assert.Equal(1024, a.SlidingWindow);
        Assert.Equal(29, Enumerable.Range(0, 34).Count(a.IsSlidingLayer));
        Assert.Equal(("linear", 8.0), (a.RopeScaling!.Type, a.RopeScaling.Factor));
        Assert.Equal(256.0, a.QueryPreAttnScalar);
        Assert.True(a.TiedEmbeddings);
        Assert.Equal([2048L, 2560], Tensor(a, "model.language_model.layers.33.self_attn.q_proj.weight").Shape);
        Assert.Equal([256L], Tensor(a, "model.language_model.layers.0.self_attn.k_norm.weight").Shape);
        Assert.Equal([262_208L, 2560], Tensor(a, "model.language_model.embed_tokens.weight").Shape);
        Assert.DoesNotContain(a.Tensors, t => t.Name.StartsWith("model.layers.", StringComparison.Ordinal));
    }

    [Fact]
    public void The_27b_reads_its_own_widths_and_query_scale()
    {
        // google/gemma-3-27b-it: head_dim 128 with query_pre_attn_scalar 168 (hidden / heads), 62 layers of which every
        // sixth is global; Hugging Face lists the checkpoint at 27.4B parameters.
        var a = ModelCatalog.Get("google/gemma-3-27b-it");
        Assert.Equal((262_208, 5376, 62, 32, 16, 128), (a.VocabSize, a.HiddenSize, a.NumLayers, a.NumHeads, a.NumKvHeads, a.HeadDim));
        Assert.Equal(168.0, a.QueryPreAttnScalar);
        Assert.Equal(52, Enumerable.Range(0, 62).Count(a.IsSlidingLayer));
        Assert.Equal([4096L, 5376], Tensor(a, "model.language_model.layers.61.self_attn.q_proj.weight").Shape);
        Assert.Equal(27.4, Math.Round(a.ParameterCount / 1e9, 1));
        // The same SigLIP tower as the 4B.
        long vision(ModelArchitecture m) => m.Tensors.Where(t => t.Role == TensorRole.Vision && !t.Name.Contains("projector", StringComparison.Ordinal)).Sum(t => t.Elements);
        Assert.Equal(vision(ModelCatalog.Get("google/gemma-3-4b-it")), vision(a));
    }

    [Fact]
    public void Vision_tower_and_projector_are_listed_with_siglip_shapes()
    {
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        const string v = "model.vision_tower.vision_model.";
        Assert.Equal([1152L, 3, 14, 14], Tensor(a, v + "embeddings.patch_embedding.weight").Shape);
        // (896 / 14)² = 4096 patch positions.
        Assert.Equal([4096L, 1152], Tensor(a, v + "embeddings.position_embedding.weight").Shape);
        Assert.Equal([4304L, 1152], Tensor(a, v + "encoder.layers.26.mlp.fc1.weight").Shape);
        Assert.Equal([1152L], Tensor(a, v + "encoder.layers.0.self_attn.out_proj.bias").Shape);
        Assert.Equal([1152L], Tensor(a, v + "post_layernorm.bias").Shape);
        Assert.Equal([1152L, 2560], Tensor(a, "model.multi_modal_projector.mm_input_projection_weight").Shape);
        Assert.Equal([1152L], Tensor(a, "model.multi_modal_projector.mm_soft_emb_norm.weight").Shape);
        // vision_use_head false: no pooling head. Per encoder layer: two LayerNorms, four biased projections, two biased MLP linears.
        Assert.DoesNotContain(a.Tensors, t => t.Name.Contains(".head.", StringComparison.Ordinal));
        Assert.Equal(3 + 27 * 16 + 2 + 2, a.Tensors.Count(t => t.Role == TensorRole.Vision));
        Assert.All(a.Tensors.Where(t => t.Role == TensorRole.Vision), t => Assert.Null(t.Layer));
        // The activation ledger sees only the text decoder; the tower's nn.Linear weights are marked for LoRA.
        Assert.All(a.Linears, l => Assert.StartsWith("model.language_model.layers.", l.Module));
        Assert.Equal(27 * 6, a.Tensors.Count(t => t.VisionLinear));
        Assert.False(Tensor(a, "model.multi_modal_projector.mm_input_projection_weight").VisionLinear); // an nn.Parameter
    }

    [Theory]
    [InlineData(TrainingMethod.Full)]
    [InlineData(TrainingMethod.Lora)]
    public void Text_finetuning_keeps_the_vision_tower_frozen(TrainingMethod method)
    {
        // A text step gives the tower no gradient, so it must carry no gradient or optimizer state in the plan.
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        var selection = Planner.Fit.Planner.SelectionFor(a, new Job { Method = method, Seq = 256 });
        Assert.DoesNotContain(selection.TrainableBaseTensors, t => t.Role == TensorRole.Vision);
        Assert.Equal(a.Tensors.Count(t => t.Role == TensorRole.Vision), selection.FrozenBaseTensors.Count(t => t.Role == TensorRole.Vision));
        if (method == TrainingMethod.Full)
            Assert.Equal(a.ParameterCount - a.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements), selection.TrainableBaseParameters);
        else
            // all-linear reaches the tower's linears (below), whose adapters get no gradient in a text step.
            Assert.Equal(selection.TrainableParameters - selection.VisionAdapterParameters, selection.SteppedParameters);
    }

    [Fact]
    public void All_linear_adapts_the_vision_towers_linears_as_peft_does()
    {
        // PEFT's all-linear takes every nn.Linear but the output head (tuners_utils._maybe_include_all_linear_layers), the
        // SigLIP tower's q/k/v/out_proj and fc1/fc2 included. A MedGemma-1.5-4B run (the Gemma 3 4B architecture) logged
        // "trainable params: 38,497,792 || all params: 4,338,577,264 || trainable%: 0.8873" with r = 16 on all-linear
        // (public "Health LLM Finetuning Demo" log on LUMI, June 2026); the text decoder's 238 linears alone give 29,802,496.
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        var sel = Planner.Fit.Planner.SelectionFor(a, new Job());
        Assert.Equal("trainable params: 38,497,792 || all params: 4,338,577,264 || trainable%: 0.8873", sel.PeftSummary);
        Assert.Equal(238 + 27 * 6, sel.AdaptedLinears.Count);
        // Per SigLIP layer: four 1152 × 1152 projections and fc1/fc2 (1152 ↔ 4304), r·(in + out) each.
        Assert.Equal(27 * 16L * (4 * 2304 + 2 * 5456), sel.VisionAdapterParameters);
        Assert.Equal(29_802_496, sel.SteppedParameters);
        var fc1 = sel.Adapters.Where(x => x.Module == "model.vision_tower.vision_model.encoder.layers.0.mlp.fc1").ToList();
        Assert.Equal([[16L, 1152], [4304L, 16]], fc1.Select(x => x.Shape));

        // A named target matches by suffix, the tower's modules too: q_proj adapts the tower's 27 q_proj with the decoder's 34.
        var q = TrainableSelection.Create(a, TrainingMethod.Lora, lora: new LoraConfig { Targets = ["q_proj"] });
        Assert.Equal(34 + 27, q.AdaptedLinears.Count);
        // fc1 exists only in the tower; the error for a missing target lists the tower's modules.
        Assert.Equal(27, TrainableSelection.Create(a, TrainingMethod.Lora, lora: new LoraConfig { Targets = ["fc1"] }).AdaptedLinears.Count);
        Assert.Contains("out_proj", Assert.Throws<InputError>(() => TrainableSelection.Create(a, TrainingMethod.Lora, lora: new LoraConfig { Targets = ["nope"] })).Fix);
    }

    [Fact]
    public void The_towers_adapters_are_held_but_get_no_gradient_or_optimizer_state_in_a_text_step()
    {
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        var plan = Planner.Fit.Planner.Create(a, new Job { Seq = 512 }, [], suggestFixes: false);
        var ledger = plan.Ledger;
        var sel = plan.Selection;
        Assert.Equal(sel.AdapterParameters * 4, Line(ledger, LineKind.LoraAdapters));
        Assert.Equal(sel.SteppedParameters * 4, Line(ledger, LineKind.Gradients));
        Assert.Equal(2 * sel.SteppedParameters * 4, Line(ledger, LineKind.OptimizerState));
        Assert.Contains("vision tower", ledger.Tensors.Single(e => e.Kind == LineKind.Gradients).Formula);
        var model = JsonNode.Parse(Planner.Fit.PlanJson.Serialize(plan))!["model"]!;
        // The plan says what it is: a text step, and how to plan image inputs.
        Assert.Contains(model["warnings"]!.AsArray(), w => ((string)w!).Contains("no image runs through it", StringComparison.Ordinal)
            && ((string)w!).Contains("--images", StringComparison.Ordinal));
        Assert.Empty(ModelCatalog.Get("google/gemma-3-1b-it").PlanWarnings(0));
        Assert.Equal(sel.VisionAdapterParameters, (long)model["vision_adapter_parameters"]!);
        Assert.Equal(sel.TrainableParameters, (long)model["trainable_parameters"]!);
        // The replay holds them too (one small-pool block per factor), and its allocated peak stays the ledger's.
        var replay = ledger.Replay!;
        Assert.InRange(replay.PeakAllocatedBytes / (double)ledger.PeakBytes, 0.97, 1.03);

        // ES perturbs and steps every parameter that requires grad: there the tower's adapters get AdamW state.
        var es = Planner.Fit.Planner.Create(a, new Job { Seq = 512, Rule = LearningRule.Es }, [], suggestFixes: false).Ledger;
        Assert.Equal(2 * sel.TrainableParameters * 4, Line(es, LineKind.OptimizerState));
    }

    [Fact]
    public void A_bitsandbytes_load_packs_the_towers_linears_with_the_text_models()
    {
        // transformers' get_keys_to_not_convert spares tied weights, the last parameter's module and the output embeddings:
        // the SigLIP tower's nn.Linear modules become Linear4bit like the decoder's; its convolution, position table, norms
        // and biases stay 16-bit.
        var a = ModelCatalog.Get("google/gemma-3-4b-it");
        var plan = Planner.Fit.Planner.Create(a, new Job { Method = TrainingMethod.QLora, Seq = 512 }, [], suggestFixes: false);
        var w = plan.Job.ResolvedWeightsDtype;
        long visionLinear = a.Tensors.Where(t => t.VisionLinear).Sum(t => t.Elements);
        long textLinear = a.Tensors.Where(t => t.IsLinearWeight && t.Role != TensorRole.LmHead).Sum(t => t.Elements);
        Assert.Equal(27 * (4 * 1152L * 1152 + 2 * 1152L * 4304), visionLinear);
        Assert.Equal((textLinear + visionLinear) * w.Bytes(), plan.Ledger.Tensors.Single(e => e.Kind == LineKind.WeightsFrozenQuantized).Bytes, 0);
        var skipped = plan.Ledger.Tensors.Single(e => e.Kind == LineKind.WeightsSkippedByQuantizer);
        Assert.Equal((a.ParameterCount - textLinear - visionLinear) * 2.0, skipped.Bytes, 0);
        Assert.Contains("vision tower's other tensors", skipped.Name);
        // The replay loads the packed tower too: its allocated peak stays the ledger's.
        Assert.InRange(plan.Ledger.Replay!.PeakAllocatedBytes / (double)plan.Ledger.PeakBytes, 0.97, 1.03);
        // Inference on a 4-bit load packs the same linears.
        var infer = Planner.Fit.Planner.Create(a, new Job { Task = JobTask.Infer, WeightsDtype = DType.Nf4, Seq = 512 }, [], suggestFixes: false);
        Assert.Equal((textLinear + visionLinear) * DType.Nf4.Bytes(), infer.Ledger.Tensors.Single(e => e.Kind == LineKind.WeightsFrozenQuantized).Bytes, 0);
    }

    private static long Line(MemoryLedger ledger, LineKind kind) => (long)ledger.Tensors.Single(e => e.Kind == kind).Bytes;

    [Fact]
    public void Vision_use_head_absent_builds_the_attention_pooling_head()
    {
        var json = Config();
        json["vision_config"]!.AsObject().Remove("vision_use_head");
        var a = HfConfigReader.Parse(json.ToJsonString(), "cfg.json");
        const string h = "model.vision_tower.vision_model.head.";
        Assert.Equal([1L, 1, 1152], Tensor(a, h + "probe").Shape);
        Assert.Equal([3456L, 1152], Tensor(a, h + "attention.in_proj_weight").Shape);
        Assert.Equal([3456L], Tensor(a, h + "attention.in_proj_bias").Shape);
        Assert.Equal([1152L, 4304], Tensor(a, h + "mlp.fc2.weight").Shape);
        // probe, in_proj (2), out_proj (2), layernorm (2), fc1 (2), fc2 (2).
        Assert.Equal(11, a.Tensors.Count(t => t.Name.StartsWith(h, StringComparison.Ordinal)));
        var without = ModelCatalog.Get("google/gemma-3-4b-it");
        long headElements = 1152 + 3L * 1152 * 1152 + 3 * 1152 + 1152L * 1152 + 1152 + 2 * 1152 + 4304L * 1152 + 4304 + 1152L * 4304 + 1152;
        Assert.Equal(without.ParameterCount + headElements, a.ParameterCount);
    }

    [Theory]
    [InlineData("text_config", null, "is missing")]
    [InlineData("vision_config", "[]", "must be an object")]
    [InlineData("text_config.model_type", "\"gemma2\"", "expected \"gemma3_text\"")]
    [InlineData("vision_config.model_type", "\"clip_vision_model\"", "expected \"siglip_vision_model\"")]
    public void Bad_nested_blocks_are_named(string key, string? json, string problem)
    {
        var node = Config();
        var parts = key.Split('.');
        var owner = parts.Length == 1 ? node : node[parts[0]]!.AsObject();
        if (json is null) owner.Remove(parts[^1]); else owner[parts[^1]] = JsonNode.Parse(json);
        var e = Bad(node);
        Assert.Equal($"cfg.json: {key}", e.Field);
        Assert.Contains(problem, e.Problem);
    }

    [Theory]
    [InlineData("vision_config", "num_attention_heads", "7", "does not divide hidden_size 1152")]
    [InlineData("vision_config", "patch_size", "1000", "exceeds image_size 896")]
    [InlineData("vision_config", "hidden_size", "0", "must be positive")]
    [InlineData("text_config", "layer_types", "[\"full_attention\"]", "has 1 entries but num_hidden_layers is 34")]
    [InlineData("text_config", "sliding_window", "-1", "must be positive")]
    public void Bad_nested_values_name_the_block_and_key(string block, string key, string json, string problem)
    {
        var node = Config();
        node[block]![key] = JsonNode.Parse(json);
        var e = Bad(node);
        Assert.Equal($"cfg.json: {block}: {key}", e.Field);
        Assert.Contains(problem, e.Problem);
    }
}
