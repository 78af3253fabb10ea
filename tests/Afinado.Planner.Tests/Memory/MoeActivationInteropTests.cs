using System.Text.Json;
using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Afinado.Planner.Tests.GpuBench;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// The planner's MoE activation line equals what PyTorch's autograd keeps for transformers' MoE blocks
/// (bench/interop/moe_saved.py runs each block's forward on Debian's python3-torch and sums the saved tensors of its
/// graph), for one-layer models whose MLP input needs a gradient because LoRA adapts attention (or whose router or
/// experts train): the router's softmax or sigmoid, top-k indices and renormalisation, and per routed pair what the
/// experts backend keeps — the eager loop's positions, weighted output and index_add_ source, or grouped_mm's gather
/// index, sort permutation and its inverse — besides the experts' own MLPs.
/// </summary>
public class MoeActivationInteropTests
{
    [Theory]
    [InlineData(64, 32, 48, 8, 2, "eager", "float32")]
    [InlineData(96, 48, 40, 4, 1, "eager", "float32")]
    [InlineData(40, 32, 64, 6, 3, "eager", "bfloat16")]
    [InlineData(64, 32, 48, 8, 2, "grouped", "float32")]
    [InlineData(96, 48, 40, 4, 1, "grouped", "bfloat16")]
    [InlineData(40, 32, 64, 6, 3, "grouped", "bfloat16")]
    public void Mixtral_block_activations_equal_the_tensors_autograd_saves(int tokens, int hidden, int width, int experts, int topK, string backend, string dtype)
    {
        var arch = HfConfigReader.Parse($$"""
            {"model_type":"mixtral","vocab_size":256,"hidden_size":{{hidden}},"intermediate_size":{{width}},"num_hidden_layers":1,
             "num_attention_heads":4,"num_key_value_heads":4,"num_local_experts":{{experts}},"num_experts_per_tok":{{topK}},
             "rms_norm_eps":1e-5,"max_position_embeddings":256,"tie_word_embeddings":false}
            """, "mixtral-test.json");
        bool bf16 = dtype == "bfloat16";
        var job = new Job
        {
            Method = TrainingMethod.Lora,
            Lora = new LoraConfig { Targets = ["q_proj"], Dropout = 0 },
            Precision = bf16 ? Precision.Bf16 : Precision.Fp32,
            Experts = backend == "grouped" ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager,
            Batch = 1,
            Seq = tokens,
        };
        AssertMlpActivationsEqualAutograd(arch, job, bf16 ? GpuCatalog.Get("h100") : Device.Cpu(),
            $"{tokens}", $"{hidden}", $"{width}", $"{experts}", $"{topK}", "none", "1", backend, dtype);
    }

    /// <summary>Qwen3 MoE's router renormalises only with norm_topk_prob; trainable router and full finetuning under both
    /// backends (the stacks then keep their inputs: the gathered rows and the gated product).</summary>
    [Theory]
    [InlineData(false, "router", "eager", "float32")]
    [InlineData(true, "router", "grouped", "float32")]
    [InlineData(true, "all", "eager", "bfloat16")]
    [InlineData(false, "all", "grouped", "bfloat16")]
    [InlineData(true, "peft", "grouped", "bfloat16")]
    [InlineData(true, "peft", "eager", "float32")]
    public void Qwen3_moe_block_activations_equal_the_tensors_autograd_saves(bool norm, string trains, string backend, string dtype)
    {
        const int tokens = 64, hidden = 32, width = 24, experts = 8, topK = 2;
        var arch = HfConfigReader.Parse($$"""
            {"model_type":"qwen3_moe","vocab_size":256,"hidden_size":{{hidden}},"intermediate_size":64,"moe_intermediate_size":{{width}},
             "num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":4,"head_dim":8,"num_experts":{{experts}},
             "num_experts_per_tok":{{topK}},"norm_topk_prob":{{(norm ? "true" : "false")}},"decoder_sparse_step":1,"mlp_only_layers":[],
             "rms_norm_eps":1e-6,"max_position_embeddings":256,"tie_word_embeddings":false}
            """, "qwen3-moe-test.json");
        bool bf16 = dtype == "bfloat16";
        var precision = bf16 ? Precision.Bf16 : Precision.Fp32;
        var backendKind = backend == "grouped" ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager;
        var job = trains switch
        {
            "all" => new Job { Method = TrainingMethod.Full, Precision = precision, Experts = backendKind, Batch = 1, Seq = tokens },
            // PEFT target_parameters on transformers 5's stacks (LoRA on q_proj too, so the block input needs a gradient).
            "peft" => new Job { Method = TrainingMethod.Lora, Precision = precision, Experts = backendKind, Batch = 1, Seq = tokens,
                Lora = new LoraConfig { Targets = ["q_proj"], TargetParameters = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], Dropout = 0 } },
            _ => new Job { Method = TrainingMethod.Freeze, FreezePatterns = ["**.self_attn", "**.experts", "model.embed_tokens", "**norm", "lm_head"],
                Precision = precision, Experts = backendKind, Batch = 1, Seq = tokens },
        };
        AssertMlpActivationsEqualAutograd(arch, job, bf16 ? GpuCatalog.Get("h100") : Device.Cpu(),
            $"{tokens}", $"{hidden}", $"{width}", $"{experts}", $"{topK}", trains, norm ? "1" : "0", backend, dtype);
    }

    /// <summary>gpt-oss's training loop (clamped, interleaved gate/up with biases) with LoRA on attention, and with PEFT
    /// target_parameters adapting its stacked experts (the loop then runs on the merged W + ΔW, which it saves).</summary>
    [Theory]
    [InlineData(64, 32, 48, 8, 2, false)]
    [InlineData(48, 40, 24, 4, 2, false)]
    [InlineData(64, 32, 48, 8, 2, true)]
    [InlineData(64, 32, 48, 8, 2, false, "grouped")]
    [InlineData(48, 40, 24, 4, 2, true, "grouped")]
    public void Gpt_oss_block_activations_equal_the_tensors_autograd_saves(int tokens, int hidden, int width, int experts, int topK, bool trainExperts,
        string backend = "eager")
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Catalog.ModelCatalog.ConfigJson("openai/gpt-oss-20b"))!.AsObject();
        node.Remove("quantization_config");
        foreach (var (key, value) in new (string, int)[] { ("hidden_size", hidden), ("intermediate_size", width), ("num_local_experts", experts),
                     ("num_experts_per_tok", topK), ("experts_per_token", topK), ("num_hidden_layers", 1), ("num_attention_heads", 4),
                     ("num_key_value_heads", 4), ("head_dim", 8), ("vocab_size", 256) })
            node[key] = value;
        node["layer_types"] = new System.Text.Json.Nodes.JsonArray("full_attention");
        var arch = HfConfigReader.Parse(node.ToJsonString(), "gpt-oss-test.json");
        var job = trainExperts
            ? new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["q_proj"], TargetParameters = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], Dropout = 0 },
                Precision = Precision.Fp32, Batch = 1, Seq = tokens }
            : new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["q_proj"], Dropout = 0 }, Precision = Precision.Fp32, Batch = 1, Seq = tokens };
        job = job with { Experts = backend == "grouped" ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager };
        AssertMlpActivationsEqualAutograd(arch, job, Device.Cpu(),
            "--gpt-oss", $"{tokens}", $"{hidden}", $"{width}", $"{experts}", $"{topK}", trainExperts ? "peft" : "none", backend);
    }
    /// <summary>DeepseekV3MoE (transformers models/deepseek_v3): the router's fp32 linear and sigmoid, grouped top-k, the
    /// gathered and renormalised fp32 weights, the expert loop into an fp32 accumulator, and the shared experts; in fp32 on
    /// the CPU and in bf16 (where the router's fp32 copies of its input and weight and the fp32 weighted outputs appear).</summary>
    [Theory]
    [InlineData(64, 32, 48, 8, 2, 1, 1, 1, "float32", false, "eager")]
    [InlineData(96, 48, 40, 8, 3, 2, 4, 2, "float32", false, "grouped")]
    [InlineData(64, 32, 48, 8, 2, 1, 1, 1, "bfloat16", false, "eager")]
    [InlineData(80, 32, 24, 16, 4, 1, 4, 2, "bfloat16", false, "grouped")]
    [InlineData(64, 32, 48, 8, 2, 1, 1, 1, "float32", true, "grouped")]
    [InlineData(64, 32, 48, 8, 2, 1, 2, 1, "bfloat16", true, "eager")]
    [InlineData(64, 32, 48, 8, 2, 1, 2, 1, "bfloat16", true, "grouped")]
    public void Deepseek_v3_block_activations_equal_the_tensors_autograd_saves(int tokens, int hidden, int width, int experts, int topK,
        int shared, int groups, int topkGroups, string dtype, bool fullFinetune, string backend)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Catalog.ModelCatalog.ConfigJson("deepseek-ai/DeepSeek-V3"))!.AsObject();
        node.Remove("quantization_config");
        foreach (var (key, value) in new (string, int)[] { ("hidden_size", hidden), ("moe_intermediate_size", width), ("n_routed_experts", experts),
                     ("num_experts_per_tok", topK), ("n_shared_experts", shared), ("n_group", groups), ("topk_group", topkGroups),
                     ("num_hidden_layers", 1), ("first_k_dense_replace", 0), ("num_attention_heads", 4), ("num_key_value_heads", 4),
                     ("q_lora_rank", 16), ("kv_lora_rank", 16), ("qk_nope_head_dim", 8), ("qk_rope_head_dim", 8), ("v_head_dim", 8),
                     ("vocab_size", 256), ("intermediate_size", 64) })
            node[key] = value;
        var arch = HfConfigReader.Parse(node.ToJsonString(), "deepseek-v3-test.json");
        bool bf16 = dtype == "bfloat16";
        // Full finetuning trains the router too (its input copy joins the saved tensors); LoRA on o_proj leaves the MLP frozen
        // but makes its input need a gradient.
        var backendKind = backend == "grouped" ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager;
        var job = fullFinetune
            ? new Job { Method = TrainingMethod.Full, Precision = bf16 ? Precision.Bf16 : Precision.Fp32, Experts = backendKind, Batch = 1, Seq = tokens }
            : new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["o_proj"], Dropout = 0 }, Precision = bf16 ? Precision.Bf16 : Precision.Fp32,
                Experts = backendKind, Batch = 1, Seq = tokens };
        AssertMlpActivationsEqualAutograd(arch, job, bf16 ? GpuCatalog.Get("h100") : Device.Cpu(),
            "--deepseek", $"{tokens}", $"{hidden}", $"{width}", $"{experts}", $"{topK}", fullFinetune ? "all" : "none", $"{shared}", $"{groups}", $"{topkGroups}", dtype, backend);
    }
    /// <summary>Llama4TextMoe (transformers models/llama4): sigmoid scores of the top-k logits, every token repeated for every
    /// expert and scaled, two bmm over the stacked experts, and the shared expert; in fp32 and bf16, with LoRA on
    /// attention and with full finetuning (router, stacks and shared expert trainable).</summary>
    [Theory]
    [InlineData(64, 32, 48, 8, 1, "float32", false)]
    [InlineData(48, 40, 24, 4, 2, "float32", false)]
    [InlineData(64, 32, 48, 8, 1, "bfloat16", false)]
    [InlineData(64, 32, 48, 8, 2, "float32", true)]
    [InlineData(40, 32, 24, 16, 1, "bfloat16", true)]
    public void Llama4_block_activations_equal_the_tensors_autograd_saves(int tokens, int hidden, int width, int experts, int topK, string dtype, bool fullFinetune)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(Catalog.ModelCatalog.ConfigJson("meta-llama/Llama-4-Scout-17B-16E"))!.AsObject();
        var text = node["text_config"]!.AsObject();
        foreach (var (key, value) in new (string, int)[] { ("hidden_size", hidden), ("intermediate_size", width), ("intermediate_size_mlp", 2 * width),
                     ("num_local_experts", experts), ("num_experts_per_tok", topK), ("num_hidden_layers", 1), ("num_attention_heads", 4),
                     ("num_key_value_heads", 4), ("head_dim", 8), ("vocab_size", 256), ("interleave_moe_layer_step", 1) })
            text[key] = value;
        foreach (var key in new[] { "layer_types", "no_rope_layers", "moe_layers" }) text.Remove(key);
        var arch = HfConfigReader.Parse(node.ToJsonString(), "llama4-test.json");
        bool bf16 = dtype == "bfloat16";
        var precision = bf16 ? Precision.Bf16 : Precision.Fp32;
        var job = fullFinetune
            ? new Job { Method = TrainingMethod.Full, Precision = precision, Batch = 1, Seq = tokens }
            : new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["q_proj"], Dropout = 0 }, Precision = precision, Batch = 1, Seq = tokens };
        // The text layers' MLP line (the vision tower is frozen and runs nothing in a text step).
        AssertMlpActivationsEqualAutograd(arch, job, bf16 ? GpuCatalog.Get("h100") : Device.Cpu(),
            "--llama4", $"{tokens}", $"{hidden}", $"{width}", $"{experts}", $"{topK}", fullFinetune ? "all" : "none", dtype);
    }
    /// <summary>PhimoeSparseMoeBlock in training (transformers models/phimoe): optional input jitter, sparsemixer's two
    /// sampled picks (masked softmax, gather, MultiplierProcessor's saved tensors) and Mixtral's expert loop; fp32 and
    /// bf16, LoRA on attention, a trainable router, full finetuning.</summary>
    [Theory]
    [InlineData(64, 32, 48, 8, "float32", 0.0, "none", "eager")]
    [InlineData(64, 32, 48, 8, "bfloat16", 0.0, "none", "eager")]
    [InlineData(96, 40, 24, 16, "float32", 0.01, "none", "eager")]
    [InlineData(64, 32, 48, 8, "float32", 0.0, "router", "eager")]
    [InlineData(64, 32, 48, 8, "bfloat16", 0.01, "all", "eager")]
    [InlineData(64, 32, 48, 8, "float32", 0.0, "none", "grouped")]
    [InlineData(96, 40, 24, 16, "bfloat16", 0.01, "router", "grouped")]
    [InlineData(64, 32, 48, 8, "bfloat16", 0.01, "all", "grouped")]
    [InlineData(64, 32, 48, 8, "float32", 0.0, "lora-router", "eager")]
    [InlineData(64, 32, 48, 8, "bfloat16", 0.01, "lora-router", "grouped")]
    public void Phimoe_block_activations_equal_the_tensors_autograd_saves(int tokens, int hidden, int width, int experts, string dtype, double inputJitter, string trains,
        string backend)
    {
        var arch = HfConfigReader.Parse($$"""
            {"model_type":"phimoe","vocab_size":256,"hidden_size":{{hidden}},"intermediate_size":{{width}},"num_hidden_layers":1,
             "num_attention_heads":4,"num_key_value_heads":4,"num_local_experts":{{experts}},"num_experts_per_tok":2,
             "input_jitter_noise":{{inputJitter.ToString(System.Globalization.CultureInfo.InvariantCulture)}},"router_jitter_noise":0.01}
            """, "phimoe-test.json");
        bool bf16 = dtype == "bfloat16";
        var precision = bf16 ? Precision.Bf16 : Precision.Fp32;
        var backendKind = backend == "grouped" ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager;
        var job = trains switch
        {
            "all" => new Job { Method = TrainingMethod.Full, Precision = precision, Batch = 1, Seq = tokens },
            // Only the router trains (everything else frozen): it keeps its input.
            "router" => new Job { Method = TrainingMethod.Freeze, FreezePatterns = ["**.self_attn", "**.experts", "model.embed_tokens", "**norm", "lm_head"], Precision = precision, Batch = 1, Seq = tokens },
            // PEFT's LoRA layer on the router (PhimoeRouter returns its logits, so the branch runs), q_proj too so the
            // block input needs a gradient as in the other cases.
            "lora-router" => new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["q_proj", "gate"], Dropout = 0 }, Precision = precision, Batch = 1, Seq = tokens },
            _ => new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["q_proj"], Dropout = 0 }, Precision = precision, Batch = 1, Seq = tokens },
        } with { Experts = backendKind };
        // The router adapter's tensors are on the LoRA line: the difference it makes there joins the block's MLP line.
        var withoutRouterAdapter = trains == "lora-router" ? job with { Lora = job.Lora! with { Targets = ["q_proj"] } } : null;
        AssertMlpActivationsEqualAutograd(arch, job, bf16 ? GpuCatalog.Get("h100") : Device.Cpu(), withoutRouterAdapter,
            "--phimoe", $"{tokens}", $"{hidden}", $"{width}", $"{experts}", "2", trains, dtype, inputJitter.ToString(System.Globalization.CultureInfo.InvariantCulture), backend);
    }
    /// <summary>Qwen2-MoE's block adds a shared expert on every token, scaled by sigmoid(shared_expert_gate(x)): the
    /// sigmoid's output and the shared expert's output (the scaling product's operands) join the routed block's tensors.</summary>
    [Theory]
    [InlineData("none", "grouped", "bfloat16")]
    [InlineData("none", "eager", "float32")]
    [InlineData("all", "grouped", "float32")]
    public void Qwen2_moe_block_with_its_shared_expert_equals_the_tensors_autograd_saves(string trains, string backend, string dtype)
    {
        const int tokens = 64, hidden = 32, width = 24, experts = 8, topK = 2, shared = 40;
        var arch = HfConfigReader.Parse($$"""
            {"model_type":"qwen2_moe","vocab_size":256,"hidden_size":{{hidden}},"intermediate_size":64,"moe_intermediate_size":{{width}},
             "shared_expert_intermediate_size":{{shared}},"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":4,
             "num_experts":{{experts}},"num_experts_per_tok":{{topK}},"norm_topk_prob":false,"decoder_sparse_step":1,"mlp_only_layers":[],
             "rms_norm_eps":1e-6,"max_position_embeddings":256,"tie_word_embeddings":false}
            """, "qwen2-moe-test.json");
        bool bf16 = dtype == "bfloat16";
        var precision = bf16 ? Precision.Bf16 : Precision.Fp32;
        var backendKind = backend == "grouped" ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager;
        var job = trains == "all"
            ? new Job { Method = TrainingMethod.Full, Precision = precision, Experts = backendKind, Batch = 1, Seq = tokens }
            : new Job { Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["q_proj"], Dropout = 0 }, Precision = precision,
                Experts = backendKind, Batch = 1, Seq = tokens };
        AssertMlpActivationsEqualAutograd(arch, job, bf16 ? GpuCatalog.Get("h100") : Device.Cpu(),
            $"{tokens}", $"{hidden}", $"{width}", $"{experts}", $"{topK}", trains, "0", backend, dtype, $"{shared}");
    }
    /// <summary>DeepseekV2Moe (transformers 5): softmax scores without renormalisation, greedy or group-limited top-k (the
    /// latter keeps its score mask), the stacked experts under both backends, shared experts.</summary>
    [Theory]
    [InlineData("greedy", 1, 1, "bfloat16", "grouped")]
    [InlineData("group_limited_greedy", 4, 2, "float32", "eager")]
    [InlineData("group_limited_greedy", 2, 1, "bfloat16", "grouped")]
    public void Deepseek_v2_block_activations_equal_the_tensors_autograd_saves(string topkMethod, int groups, int topkGroups, string dtype, string backend)
    {
        const int tokens = 64, hidden = 32, width = 48, experts = 8, topK = 2;
        var node = System.Text.Json.Nodes.JsonNode.Parse(Catalog.ModelCatalog.ConfigJson("deepseek-ai/DeepSeek-V2-Lite-Chat"))!.AsObject();
        foreach (var (key, value) in new (string, int)[] { ("hidden_size", hidden), ("moe_intermediate_size", width), ("n_routed_experts", experts),
                     ("num_experts_per_tok", topK), ("n_shared_experts", 1), ("n_group", groups), ("topk_group", topkGroups),
                     ("num_hidden_layers", 1), ("first_k_dense_replace", 0), ("num_attention_heads", 4), ("num_key_value_heads", 4),
                     ("kv_lora_rank", 16), ("qk_nope_head_dim", 8), ("qk_rope_head_dim", 8), ("v_head_dim", 8),
                     ("vocab_size", 256), ("intermediate_size", 64) })
            node[key] = value;
        node["topk_method"] = topkMethod;
        var arch = HfConfigReader.Parse(node.ToJsonString(), "deepseek-v2-test.json");
        bool bf16 = dtype == "bfloat16";
        var job = new Job
        {
            Method = TrainingMethod.Lora, Lora = new LoraConfig { Targets = ["o_proj"], Dropout = 0 }, Precision = bf16 ? Precision.Bf16 : Precision.Fp32,
            Experts = backend == "grouped" ? ExpertsBackend.GroupedMm : ExpertsBackend.Eager, Batch = 1, Seq = tokens,
        };
        AssertMlpActivationsEqualAutograd(arch, job, bf16 ? GpuCatalog.Get("h100") : Device.Cpu(),
            "--deepseek2", $"{tokens}", $"{hidden}", $"{width}", $"{experts}", $"{topK}", "none", "1", $"{groups}", $"{topkGroups}", dtype, backend, topkMethod == "greedy" ? "0" : "1");
    }
    /// <summary>Plans <paramref name="job"/> on <paramref name="device"/> and runs bench/interop/moe_saved.py with
    /// <paramref name="scriptArgs"/>: the MLP activation line equals the bytes autograd saved, to the byte.</summary>
    private static void AssertMlpActivationsEqualAutograd(ModelArchitecture arch, Job job, Device device, params string[] scriptArgs) =>
        AssertMlpActivationsEqualAutograd(arch, job, device, null, scriptArgs);

    /// <param name="loraBaseline">The same job without an adapter inside the block: the LoRA line's difference is the
    /// block's adapter tensors, which the script measures with the block.</param>
    private static void AssertMlpActivationsEqualAutograd(ModelArchitecture arch, Job job, Device device, Job? loraBaseline, params string[] scriptArgs)
    {
        var plan = Fit.Planner.Create(arch, job, [device], suggestFixes: false);
        double planned = plan.Ledger.Tensors.Single(e => e.Kind == LineKind.ActivationsMlp).Bytes;
        if (loraBaseline is not null)
        {
            double Lora(Fit.Plan p) => p.Ledger.Tensors.Where(e => e.Kind == LineKind.ActivationsLora).Sum(e => e.Bytes);
            double blockAdapter = Lora(plan) - Lora(Fit.Planner.Create(arch, loraBaseline, [device], suggestFixes: false));
            Assert.True(blockAdapter > 0, "the block's adapter adds no LoRA activations");
            planned += blockAdapter;
        }
        var (code, output) = GpuScript.RunPython(Path.Combine("bench", "interop", "moe_saved.py"), scriptArgs);
        Assert.True(code == 0, output);
        using var measured = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0]);
        Assert.Equal(measured.RootElement.GetProperty("saved_bytes").GetDouble(), planned);
    }
}
