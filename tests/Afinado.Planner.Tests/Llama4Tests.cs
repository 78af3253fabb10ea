using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// Llama 4 as transformers' models/llama4 builds it (Llama4ForConditionalGeneration: language_model, vision_model,
/// multi_modal_projector; Llama4TextMoe with stacked experts, a router and a shared expert) and as Meta's model card
/// (meta-llama/Llama-4-Scout-17B-16E, Llama-4-Maverick-17B-128E-Instruct, both in the catalog) counts it: Scout 17B active / 109B total with 16 experts,
/// Maverick 17B active / 400B total with 128 experts. Per-module figures: the printed parameter table of Scout
/// (vision class/positional/patch embeddings, vision q_proj and fc1, adapter fc1/fc2, projector, embed_tokens, q/k_proj).
/// </summary>
public class Llama4Tests
{
    private const string ScoutId = "meta-llama/Llama-4-Scout-17B-16E";
    private static readonly ModelArchitecture Scout = ModelCatalog.Get(ScoutId);

    private static readonly ModelArchitecture Maverick = ModelCatalog.Get("meta-llama/Llama-4-Maverick-17B-128E-Instruct");

    private static ModelArchitecture Edited(Action<JsonObject> editText, Action<JsonObject>? editRoot = null)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(ScoutId))!.AsObject();
        editText(node["text_config"]!.AsObject());
        editRoot?.Invoke(node);
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    private static ParameterTensor Tensor(ModelArchitecture a, string name) => Assert.Single(a.Tensors, t => t.Name == name);

    [Fact]
    public void Scout_lists_the_hub_tensors_with_the_published_sizes()
    {
        const string L = "language_model.model.layers.0.";
        Assert.Equal([16L, 5120, 16384], Tensor(Scout, L + "feed_forward.experts.gate_up_proj").Shape);
        Assert.Equal([16L, 8192, 5120], Tensor(Scout, L + "feed_forward.experts.down_proj").Shape);
        Assert.Equal([16L, 5120], Tensor(Scout, L + "feed_forward.router.weight").Shape);
        Assert.Equal([8192L, 5120], Tensor(Scout, L + "feed_forward.shared_expert.gate_proj.weight").Shape);
        Assert.Equal([5120L, 8192], Tensor(Scout, L + "feed_forward.shared_expert.down_proj.weight").Shape);
        Assert.Equal([202048L, 5120], Tensor(Scout, "language_model.lm_head.weight").Shape);
        // The printed table of Scout's modules.
        Assert.Equal(1408, Tensor(Scout, "vision_model.class_embedding").Elements);
        Assert.Equal(812416, Tensor(Scout, "vision_model.positional_embedding_vlm").Elements);
        Assert.Equal(827904, Tensor(Scout, "vision_model.patch_embedding.linear.weight").Elements);
        Assert.Equal(1982464, Tensor(Scout, "vision_model.model.layers.0.self_attn.q_proj.weight").Elements);
        Assert.Equal(1408, Tensor(Scout, "vision_model.model.layers.33.self_attn.o_proj.bias").Elements);
        Assert.Equal(7929856, Tensor(Scout, "vision_model.model.layers.0.mlp.fc1.weight").Elements);
        Assert.Equal(23068672, Tensor(Scout, "vision_model.vision_adapter.mlp.fc1.weight").Elements);
        Assert.Equal(16777216, Tensor(Scout, "vision_model.vision_adapter.mlp.fc2.weight").Elements);
        Assert.Equal(20971520, Tensor(Scout, "multi_modal_projector.linear_1.weight").Elements);
        Assert.Equal(1034485760, Tensor(Scout, "language_model.model.embed_tokens.weight").Elements);
        Assert.Equal(26214400, Tensor(Scout, L + "self_attn.q_proj.weight").Elements);
        Assert.Equal(5242880, Tensor(Scout, L + "self_attn.k_proj.weight").Elements);
        // Stacked experts are parameters, not modules: LoRA reaches attention, router and shared expert by name.
        Assert.DoesNotContain(Scout.Linears, l => l.Module.Contains(".experts", StringComparison.Ordinal));
        Assert.Equal(48 * 8 + 1, Scout.Linears.Count);
    }

    [Fact]
    public void Totals_and_active_counts_match_the_model_card()
    {
        // Text: per layer attention + 16 stacked experts + shared expert + router + 2 norms; embeddings, final norm, head.
        long h = 5120, layer = 2 * h * 5120 + 2 * h * 1024 + 16 * 3 * h * 8192 + 3 * h * 8192 + 16 * h + 2 * h;
        long text = 48 * layer + 2 * 202048 * h + h;
        // Vision: embeddings, pre/post LayerNorms, 34 encoder layers, the adapter; then the projector.
        long v = 1408, vLayer = 4 * (v * v + v) + (v * 5632 + 5632) + (5632 * v + v) + 4 * v;
        long vision = v + 577 * v + 588 * v + 4 * v + 34 * vLayer + 5632L * 4096 + 4096L * 4096 + 4096L * 5120;
        Assert.Equal(text + vision, Scout.ParameterCount);
        Assert.Equal(109, Math.Round(Scout.ParameterCount / 1e9));
        // Active: one routed expert per MoE layer, the text model only (a text token never runs the vision tower).
        Assert.Equal(1, Scout.ExpertsPerToken);
        Assert.Equal(17, Math.Round(Scout.ActiveParameterCount / 1e9));
        Assert.Equal(text - 48 * 15 * 3 * h * 8192, Scout.ActiveParameterCount);

        Assert.Equal(17, Math.Round(Maverick.ActiveParameterCount / 1e9));
        // The card rounds to 400B; the tensors sum to 401.6B, which Hugging Face lists as 402B.
        Assert.Equal(402, Math.Round(Maverick.ParameterCount / 1e9));
        Assert.Equal(Scout.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements),
            Maverick.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements));
    }

    [Fact]
    public void Maverick_interleaves_dense_and_moe_layers()
    {
        Assert.Equal([16384L, 5120], Tensor(Maverick, "language_model.model.layers.0.feed_forward.gate_proj.weight").Shape);
        Assert.Equal([128L, 5120, 16384], Tensor(Maverick, "language_model.model.layers.1.feed_forward.experts.gate_up_proj").Shape);
        Assert.DoesNotContain(Maverick.Tensors, t => t.Name.StartsWith("language_model.model.layers.46.feed_forward.experts", StringComparison.Ordinal));
        Assert.Equal(16384, Maverick.IntermediateSize);
        Assert.Equal(8192, Maverick.ExpertWidth);
        Assert.Equal(16384, Maverick.UnroutedMlpWidth);
        // moe_layers, when listed, wins over the step.
        var listed = Edited(t => { t["interleave_moe_layer_step"] = 2; t["moe_layers"] = new JsonArray(0, 47); });
        // Without no_rope_layers, every fourth layer is NoPE (no_rope_layer_interval 4), as in Scout's explicit list.
        Assert.Equal(36, Maverick.SlidingLayerCount);
        Assert.False(Maverick.QkNorm);
        Assert.Equal(2, listed.Tensors.Count(t => t.Name.EndsWith("experts.down_proj", StringComparison.Ordinal)));
    }

    [Fact]
    public void Rope_layers_attend_in_chunks_and_cache_only_the_chunk()
    {
        Assert.Equal(8192, Scout.SlidingWindow);
        Assert.All(Enumerable.Range(0, 48), i => Assert.Equal((i + 1) % 4 != 0, Scout.IsSlidingLayer(i)));
        Assert.Equal(36, Scout.SlidingLayerCount);
        // Without no_rope_layers the interval decides; layer_types, when listed, wins.
        var derived = Edited(t => { t.Remove("no_rope_layers"); t["no_rope_layer_interval"] = 2; });
        Assert.Equal(24, derived.SlidingLayerCount);
        var typed = Edited(t => t["layer_types"] = new JsonArray(Enumerable.Range(0, 48).Select(i => (JsonNode)(i == 0 ? "chunked_attention" : "full_attention")).ToArray()));
        Assert.Equal(1, typed.SlidingLayerCount);
        // 32k tokens decoded: a chunked layer holds at most 8,192 of them, a NoPE layer all; 8 kv heads × 128 × 2 (K, V) × 2 B.
        var plan = Planner.Fit.Planner.Create(Scout, new Job { Task = JobTask.Infer, Seq = 1024, Context = 32768, KvCache = KvCacheKind.Static }, []);
        double perToken = 8 * 128 * 2 * 2;
        Assert.Equal(perToken * (12 * 32768 + 36 * 8192), plan.Ledger.Line(LineKind.KvCacheFullContext).Bytes, tolerance: 1);
    }

    [Fact]
    public void Every_expert_runs_every_token_in_the_activations()
    {
        // LoRA on attention only, experts frozen: each MoE layer saves gate_up (2·I) and the activation (I) for every expert
        // and token, as Llama4TextExperts' bmm over all E experts does, where top-1 dispatch would save them once; and the
        // scores need a gradient, so the layer also keeps the top-1 index, the token repeated for all 16 experts (h each)
        // and the transposed score column (MoeActivationInteropTests checks the whole block against autograd).
        var job = new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["q_proj", "v_proj"] }, Seq = 2048 };
        double Mlp(ModelArchitecture a) => Planner.Fit.Planner.Create(a, job, []).Ledger.Line(LineKind.ActivationsMlp).Bytes;
        double dense = Mlp(Scout), topOne = Mlp(Scout with { MoeRunsEveryExpert = false, MoeLoop = MoeTrainingLoop.Other });
        double perToken = 15 * 3 * 2.0 * 8192 + 8 + 16 * 2.0 * 5120 + 16 * 2.0;
        Assert.Equal(48 * perToken * 2048, dense - topOne, tolerance: 1);
    }

    [Fact]
    public void Plans_run_for_inference_and_lora_and_the_trainer_refuses()
    {
        var infer = Planner.Fit.Planner.Create(Scout, new Job { Task = JobTask.Infer, Seq = 4096 }, [GpuCatalog.Get("h100")]);
        // 108.6B bf16 weights alone exceed one 80 GB card.
        Assert.False(infer.Verdicts[0].Fits);
        var qlora = Planner.Fit.Planner.Create(Scout, new Job { Method = TrainingMethod.QLora, Checkpointing = Checkpointing.Full, Seq = 1024 }, []);
        Assert.True(qlora.Ledger.TotalBytes > 0);
        // Its step is replayed (DecoderTrace.Llama4.cs), with eager attention too (the softmax in the scores' dtype).
        Assert.NotNull(qlora.Ledger.Replay);
        var eager = new Job { Attention = AttentionKernel.Eager };
        Assert.Null(Afinado.Planner.Allocator.ReservedMemory.NotReplayed(ModelProfile.Create(Planner.Fit.Planner.SelectionFor(Scout, eager)), eager));
    }

    [Fact]
    public void The_text_model_alone_plans_under_its_own_names()
    {
        var text = JsonNode.Parse(ModelCatalog.ConfigJson(ScoutId))!["text_config"]!.ToJsonString();
        var a = HfConfigReader.Parse(text, "config.json");
        Assert.Equal("llama4_text", a.ModelType);
        Assert.Equal([202048L, 5120], Tensor(a, "lm_head.weight").Shape);
        Assert.Equal([16L, 5120], Tensor(a, "model.layers.47.feed_forward.router.weight").Shape);
        Assert.DoesNotContain(a.Tensors, t => t.Role == TensorRole.Vision);
        Assert.Equal(Scout.ParameterCount - Scout.Tensors.Where(t => t.Role == TensorRole.Vision).Sum(t => t.Elements), a.ParameterCount);
    }

    [Fact]
    public void Bad_configs_name_the_key()
    {
        Assert.Contains("num_experts_per_tok", Assert.Throws<InputError>(() => Edited(t => t["num_experts_per_tok"] = 17)).Message);
        Assert.Contains("no_rope_layers", Assert.Throws<InputError>(() => Edited(t => t["no_rope_layers"] = new JsonArray(1, 0))).Message);
        Assert.Contains("no_rope_layers", Assert.Throws<InputError>(() => Edited(t => t["no_rope_layers"] = new JsonArray(Enumerable.Range(0, 48).Select(_ => (JsonNode?)2).ToArray()))).Message);
        Assert.Contains("layer_types", Assert.Throws<InputError>(() => Edited(t => t["layer_types"] = new JsonArray(Enumerable.Range(0, 48).Select(_ => (JsonNode?)"sliding_attention").ToArray()))).Message);
        Assert.Contains("moe_layers", Assert.Throws<InputError>(() => Edited(t => t["moe_layers"] = new JsonArray(48))).Message);
        Assert.Contains("vision_config", Assert.Throws<InputError>(() => Edited(_ => { }, root => root.Remove("vision_config"))).Message);
        Assert.Contains("text_config.model_type", Assert.Throws<InputError>(() => Edited(t => t["model_type"] = "llama")).Message);
    }
}
