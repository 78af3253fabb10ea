using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests;

/// <summary>
/// GPTQ, AWQ and bitsandbytes checkpoints planned from their config's quantization_config, in the exact tensors the
/// libraries store (AutoGPTQ QuantLinear, AutoAWQ WQLinear_GEMM, bitsandbytes Params4bit / Int8Params), checked against
/// published sizes.
/// </summary>
public class QuantizedCheckpointTests
{
    /// <summary>
    /// config.json of CesarChaMal/Wizard-Vicuna-30B-Uncensored-GPTQ (a public copy of TheBloke's repository of that name,
    /// LLaMA-30B), verbatim at the commit where it says 4 bits, group 64, act-order.
    /// </summary>
    private const string WizardVicuna30BGptq = """
        {
          "_name_or_path": "/workspace/process/wizard-vicuna-30b/HF/",
          "architectures": [
            "LlamaForCausalLM"
          ],
          "bos_token_id": 1,
          "eos_token_id": 2,
          "hidden_act": "silu",
          "hidden_size": 6656,
          "initializer_range": 0.02,
          "intermediate_size": 17920,
          "max_position_embeddings": 2048,
          "max_sequence_length": 2048,
          "model_type": "llama",
          "num_attention_heads": 52,
          "num_hidden_layers": 60,
          "pad_token_id": 0,
          "rms_norm_eps": 1e-06,
          "tie_word_embeddings": false,
          "torch_dtype": "float16",
          "transformers_version": "4.30.0.dev0",
          "use_cache": true,
          "vocab_size": 32000,
          "quantization_config": {
            "bits": 4,
            "group_size": 64,
            "damp_percent": 0.01,
            "desc_act": true,
            "sym": true,
            "true_sequential": true,
            "model_name_or_path": null,
            "model_file_base_name": "model",
            "quant_method": "gptq"
          }
        }
        """;

    private static ModelArchitecture Edited(string json, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        edit(node);
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    private static ModelArchitecture WithQuantization(string catalogId, JsonObject quantization) =>
        Edited(ModelCatalog.ConfigJson(catalogId), n => n["quantization_config"] = quantization);

    private static double WeightLines(MemoryLedger l) => l.Bytes(LineKind.WeightsFrozenQuantized, LineKind.WeightsSkippedByQuantizer);

    /// <summary>
    /// The repository holds one safetensors file per variant; their Git LFS pointers give each file's size. Every file is
    /// rebuilt here byte for byte from the planner's stored tensors: what transformers loads (the planned weights) plus
    /// what AutoGPTQ of mid-2023 also wrote and transformers drops on load as unexpected keys (a zero fp16 bias in every
    /// QuantLinear, LlamaRotaryEmbedding.inv_freq fp32 [64] per layer: 8,309,760 B), plus the safetensors header.
    /// A wrong qweight/qzeros/scales/g_idx shape would move a file by megabytes; every one lands on the byte.
    /// </summary>
    [Theory]
    [InlineData("gptq_model-3bit-128g.safetensors", 3, 128, 13_509_984_992L, 13_501_417_472L)]
    [InlineData("gptq_model-3bit--1g.safetensors", 3, -1, 12_924_188_176L, 12_915_621_632L)]
    [InlineData("gptq_model-4bit-32g.safetensors", 4, 32, 19_435_090_976L, 19_426_522_112L)]
    [InlineData("gptq_model-4bit-64g.safetensors", 4, 64, 18_181_100_544L, 18_172_531_712L)]
    [InlineData("gptq_model-4bit-128g.safetensors", 4, 128, 17_554_104_608L, 17_545_536_512L)]
    [InlineData("gptq_model-8bit--1g.safetensors", 8, -1, 32_990_628_688L, 32_982_060_032L)]
    [InlineData("gptq_model-8bit-128g.safetensors", 8, 128, 33_730_582_288L, 33_722_012_672L)]
    public void Gptq_weights_rebuild_the_published_checkpoint_files_to_the_byte(string file, int bits, int group, long fileBytes, long planned)
    {
        _ = file;
        var a = Edited(WizardVicuna30BGptq, n =>
        {
            n["quantization_config"]!["bits"] = bits;
            n["quantization_config"]!["group_size"] = group;
        });
        var q = Assert.IsType<QuantizedCheckpoint>(a.Quantization);
        Assert.Equal(QuantizedCheckpointMethod.Gptq, q.Method);
        Assert.True(q.DescAct);
        // Every linear inside the 60 blocks is converted; the head is not.
        Assert.Equal(60 * 7, q.Converted(a).Count);

        var plan = Plan(a, new Job { Task = JobTask.Infer, Seq = 512 });
        Assert.Equal($"gptq-int{bits}", plan.Job.WeightsName);
        Assert.Equal(planned, WeightLines(plan.Ledger));
        Assert.Equal(fileBytes, AutoGptqFileBytes(a));
    }

    /// <summary>The safetensors file AutoGPTQ 0.2–0.3 wrote for a LLaMA checkpoint.</summary>
    private static long AutoGptqFileBytes(ModelArchitecture a)
    {
        var converted = a.Quantization!.Converted(a);
        var replaced = converted.SelectMany(c => new[] { c.Linear.Module + ".weight", c.Linear.Module + ".bias" }).ToHashSet(StringComparer.Ordinal);
        var tensors = new List<(string Name, string Dtype, long[] Shape, long Bytes)>();
        foreach (var c in converted)
        {
            tensors.AddRange(c.Tensors.Select(t => (c.Linear.Module + "." + t.Suffix, t.Dtype, t.Shape, t.Bytes)));
            if (!c.Linear.HasBias) tensors.Add((c.Linear.Module + ".bias", "F16", [c.Linear.OutFeatures], c.Linear.OutFeatures * 2));
        }
        tensors.AddRange(a.Tensors.Where(t => !replaced.Contains(t.Name)).Select(t => (t.Name, "F16", t.Shape, t.Elements * 2)));
        for (int i = 0; i < a.NumLayers; i++)
            tensors.Add(($"model.layers.{i}.self_attn.rotary_emb.inv_freq", "F32", [a.HeadDim / 2L], a.HeadDim / 2L * 4));

        // safetensors' serialize (safetensors/src/tensor.rs): tensors in data order by dtype, largest enum first (F32, I32,
        // F16), then by name; a compact JSON header of dtype, shape and data offsets, padded with spaces to a multiple of 8,
        // after its 8-byte length.
        static int Rank(string dtype) => dtype switch { "F32" => 0, "I32" => 1, "F16" => 2, _ => throw new ArgumentException(dtype) };
        var header = new StringBuilder("{");
        long offset = 0;
        foreach (var t in tensors.OrderBy(t => Rank(t.Dtype)).ThenBy(t => t.Name, StringComparer.Ordinal))
        {
            if (header.Length > 1) header.Append(',');
            header.Append($"\"{t.Name}\":{{\"dtype\":\"{t.Dtype}\",\"shape\":[{string.Join(',', t.Shape)}],\"data_offsets\":[{offset},{offset + t.Bytes}]}}");
            offset += t.Bytes;
        }
        header.Append('}');
        return 8 + (header.Length + 7) / 8 * 8 + offset;
    }

    [Fact]
    public void Gptq_tensors_follow_autogptq_quantlinear_for_one_layer()
    {
        var a = HfConfigReader.Parse(WizardVicuna30BGptq);
        var down = Assert.Single(a.Quantization!.Converted(a), c => c.Linear.Module == "model.layers.0.mlp.down_proj");
        // in 17,920, out 6,656, 4 bits, group 64: qweight [17920/32·4, 6656], 280 groups.
        var expected = new (string, string, long[])[]
        {
            ("qweight", "I32", new long[] { 2240, 6656 }), ("qzeros", "I32", new long[] { 280, 832 }), ("scales", "F16", new long[] { 280, 6656 }),
            ("g_idx", "I32", new long[] { 17920 }),
        };
        Assert.Equal(expected, down.Tensors.Select(t => (t.Suffix, t.Dtype, t.Shape)), new TensorComparer());
        // 59,637,760 + 931,840 + 3,727,360 + 71,680
        Assert.Equal(64_368_640L, down.Bytes);
    }

    private sealed class TensorComparer : IEqualityComparer<(string, string, long[])>
    {
        public bool Equals((string, string, long[]) x, (string, string, long[]) y) => x.Item1 == y.Item1 && x.Item2 == y.Item2 && x.Item3.SequenceEqual(y.Item3);
        public int GetHashCode((string, string, long[]) t) => t.Item1.GetHashCode(StringComparison.Ordinal);
    }

    /// <summary>
    /// Qwen/Qwen3-32B-AWQ. Its quantization_config as a public dump of the loaded model prints it (transformers 5.7.0:
    /// bits 4, group 128, gemm, zero point, no modules_to_not_convert), over the catalog's Qwen3-32B config, whose
    /// architecture keys are the dump's. The dump lists 1,603 tensors holding 5,731,472,384 elements, 18.00 GB, with
    /// q_proj qweight [5120, 1024], qzeros [40, 1024], scales [40, 8192] and down_proj qweight [25600, 640], qzeros
    /// [200, 640], scales [200, 5120].
    /// </summary>
    private static ModelArchitecture Qwen3_32BAwq() => WithQuantization("Qwen/Qwen3-32B", new JsonObject
    {
        ["bits"] = 4, ["group_size"] = 128, ["modules_to_not_convert"] = null, ["quant_method"] = "awq", ["version"] = "gemm", ["zero_point"] = true,
    });

    [Fact]
    public void Awq_matches_the_published_qwen3_32b_awq_tensor_list()
    {
        var a = Qwen3_32BAwq();
        Assert.Equal((5120, 64, 64, 8, 128, 25600, 151936, false),
            (a.HiddenSize, a.NumLayers, a.NumHeads, a.NumKvHeads, a.HeadDim, a.IntermediateSize, a.VocabSize, a.TiedEmbeddings));
        var q = a.Quantization!;
        var converted = q.Converted(a);
        Assert.Equal(64 * 7, converted.Count);
        var replaced = converted.Select(c => c.Linear.Module + ".weight").ToHashSet(StringComparer.Ordinal);
        var plain = a.Tensors.Where(t => !replaced.Contains(t.Name)).ToList();
        Assert.Equal(1_603, converted.Sum(c => c.Tensors.Count) + plain.Count);
        Assert.Equal(5_731_472_384L, converted.Sum(c => c.Tensors.Sum(t => t.Elements)) + plain.Sum(t => t.Elements));

        string Shape(string module, string suffix) =>
            string.Join(",", converted.Single(c => c.Linear.Module == "model.layers.0." + module).Tensors.Single(t => t.Suffix == suffix).Shape);
        Assert.Equal(["5120,1024", "40,1024", "40,8192"], new[] { "qweight", "qzeros", "scales" }.Select(s => Shape("self_attn.q_proj", s)));
        Assert.Equal(["5120,128", "40,128", "40,1024"], new[] { "qweight", "qzeros", "scales" }.Select(s => Shape("self_attn.k_proj", s)));
        Assert.Equal(["8192,640", "64,640", "64,5120"], new[] { "qweight", "qzeros", "scales" }.Select(s => Shape("self_attn.o_proj", s)));
        Assert.Equal(["5120,3200", "40,3200", "40,25600"], new[] { "qweight", "qzeros", "scales" }.Select(s => Shape("mlp.gate_proj", s)));
        Assert.Equal(["25600,640", "200,640", "200,5120"], new[] { "qweight", "qzeros", "scales" }.Select(s => Shape("mlp.down_proj", s)));

        // int32 tensors × 4 B, scales and every unconverted tensor × 2 B: 19,325,298,688 B = 18.00 GiB.
        var plan = Plan(a, new Job { Task = JobTask.Infer, Seq = 512 });
        Assert.Equal(19_325_298_688L, WeightLines(plan.Ledger));
        Assert.Equal(18.00, Math.Round(WeightLines(plan.Ledger) / (1L << 30), 2));
        var linears = plan.Ledger.Line(LineKind.WeightsFrozenQuantized);
        Assert.Equal("weights: linears (awq 4-bit, group 128)", linears.Name);
        Assert.Contains("qweight", linears.Formula);
        Assert.Contains("qzeros", linears.Formula);
        Assert.Contains("scales", linears.Formula);

        using var json = JsonDocument.Parse(PlanJson.Serialize(plan));
        Assert.Equal("awq-int4", json.RootElement.GetProperty("job").GetProperty("weights_dtype").GetString());
    }

    /// <summary>A quantization_config as transformers' BitsAndBytesConfig.to_dict writes it on save_pretrained.</summary>
    private static JsonObject Bnb(bool fourBit, bool doubleQuant = true, JsonArray? skip = null) => new()
    {
        ["_load_in_4bit"] = fourBit, ["_load_in_8bit"] = !fourBit, ["bnb_4bit_compute_dtype"] = "bfloat16", ["bnb_4bit_quant_storage"] = "uint8",
        ["bnb_4bit_quant_type"] = "nf4", ["bnb_4bit_use_double_quant"] = doubleQuant, ["llm_int8_enable_fp32_cpu_offload"] = false,
        ["llm_int8_has_fp16_weight"] = false, ["llm_int8_skip_modules"] = skip, ["llm_int8_threshold"] = 6.0,
        ["load_in_4bit"] = fourBit, ["load_in_8bit"] = !fourBit, ["quant_method"] = "bitsandbytes",
    };

    /// <summary>
    /// Llama-3.1-8B's q_proj (4,096 × 4,096 = 16,777,216 weights) in bitsandbytes, by hand from QuantState.as_dict
    /// (bitsandbytes/functional.py) and Int8Params:
    /// nf4 + double quant: weight 8,388,608 B (two codes a byte) + absmax uint8 262,144 (one per 64) + quant_map 64
    ///   + nested_absmax 1,024 × 4 = 4,096 (one per 256 blocks) + nested_quant_map 1,024 + offset 4 = 8,655,940 B;
    /// nf4: weight 8,388,608 + absmax fp32 1,048,576 + quant_map 64 = 9,437,248 B;
    /// int8: weight 16,777,216 + SCB fp32 4 × 4,096 = 16,793,600 B.
    /// </summary>
    [Theory]
    [InlineData(true, true, "bnb-nf4-dq", 8_655_940L)]
    [InlineData(true, false, "bnb-nf4", 9_437_248L)]
    [InlineData(false, false, "bnb-int8", 16_793_600L)]
    public void Bitsandbytes_stores_what_its_quant_state_holds(bool fourBit, bool doubleQuant, string name, long qProj)
    {
        var a = WithQuantization("meta-llama/Llama-3.1-8B-Instruct", Bnb(fourBit, doubleQuant));
        var q = a.Quantization!;
        Assert.Equal(name, q.Name);
        var converted = q.Converted(a);
        Assert.Equal(qProj, converted.Single(c => c.Linear.Module == "model.layers.0.self_attn.q_proj").Bytes);
        // Without llm_int8_skip_modules transformers keeps the head in 16 bits; every other nn.Linear is converted.
        Assert.Equal(32 * 7, converted.Count);

        var plan = Plan(a, new Job { Task = JobTask.Infer, Seq = 512 });
        Assert.Equal(name, plan.Job.WeightsName);
        double expected = converted.Sum(c => c.Bytes) + (a.ParameterCount - converted.Sum(c => c.Elements)) * 2.0;
        Assert.Equal(expected, WeightLines(plan.Ledger));
        // The largest converted linear (gate/up/down, 14,336 × 4,096) is what a matmul dequantizes at once.
        Assert.Equal(14_336L * 4096 * 2, plan.Ledger.Line(LineKind.DequantizationBuffer).Bytes);
    }

    [Fact]
    public void Qlora_and_lora_over_a_quantized_checkpoint_keep_its_stored_bytes()
    {
        var bnb = WithQuantization("meta-llama/Llama-3.1-8B-Instruct", Bnb(fourBit: true));
        var q = bnb.Quantization!;
        var qlora = Plan(bnb, new Job { Method = TrainingMethod.QLora, Seq = 512 });
        Assert.Equal(q.Stored(bnb).Bytes, qlora.Ledger.Line(LineKind.WeightsFrozenQuantized).Bytes);
        Assert.Equal((bnb.ParameterCount - q.Stored(bnb).Elements) * 2.0, qlora.Ledger.Line(LineKind.WeightsSkippedByQuantizer).Bytes);

        // PEFT's LoRA over a GPTQ base: the frozen linears are the checkpoint's packed ones, and the rest 16-bit.
        var gptq = HfConfigReader.Parse(WizardVicuna30BGptq);
        var lora = Plan(gptq, new Job { Method = TrainingMethod.Lora, Seq = 512 });
        Assert.Equal("gptq-int4", lora.Job.WeightsName);
        Assert.Equal(18_172_531_712L, WeightLines(lora.Ledger));
        Assert.Equal("weights: frozen linears (gptq 4-bit, group 64, act-order)", lora.Ledger.Line(LineKind.WeightsFrozenQuantized).Name);

        // A packed checkpoint is not trained directly, and --weights-dtype plans another storage as before.
        var full = Assert.Throws<InputError>(() => Plan(gptq, new Job { Method = TrainingMethod.Full, Precision = Precision.Bf16, Seq = 512 }));
        Assert.Contains("gptq-int4", full.Message);
        var bf16 = Plan(gptq, new Job { Task = JobTask.Infer, Seq = 512, WeightsDtype = DType.Bf16 });
        Assert.Equal(gptq.ParameterCount * 2.0, bf16.Ledger.Line(LineKind.Weights).Bytes);
        Assert.Equal("bf16", bf16.Job.WeightsName);
    }

    [Fact]
    public void Skipped_modules_stay_16_bit_as_transformers_matches_them()
    {
        var awq = Qwen3_32BAwq();
        var skipGate = WithQuantization("Qwen/Qwen3-32B", new JsonObject
        {
            ["bits"] = 4, ["group_size"] = 128, ["modules_to_not_convert"] = new JsonArray("gate_proj", "model.layers.0."), ["quant_method"] = "awq",
            ["version"] = "gemm", ["zero_point"] = true,
        });
        // should_convert_module: a name ending with "gate_proj" (every layer's) or starting with "model.layers.0." (layer 0).
        var kept = skipGate.Linears.Where(l => !skipGate.Quantization!.Converts(l)).ToList();
        Assert.Equal(64 + 6 + 1, kept.Count);
        Assert.Contains(kept, l => l.Module == "model.layers.5.mlp.gate_proj");
        Assert.Contains(kept, l => l.Module == "model.layers.0.self_attn.o_proj");
        Assert.DoesNotContain(kept, l => l.Module == "model.layers.10.mlp.up_proj");
        // The head is always kept by AWQ; the weights grow by exactly the skipped linears going back to 16 bits.
        var removed = awq.Quantization!.Converted(awq).Where(c => !skipGate.Quantization!.Converts(c.Linear)).ToList();
        double delta = removed.Sum(c => c.Elements * 2.0 - c.Bytes);
        Assert.Equal(WeightLines(Plan(awq, new Job { Task = JobTask.Infer }).Ledger) + delta, WeightLines(Plan(skipGate, new Job { Task = JobTask.Infer }).Ledger));

        // bitsandbytes: an explicit llm_int8_skip_modules replaces the default (the head), as transformers'
        // get_modules_to_not_convert does; "lm_head" in the list keeps it.
        var downOnly = WithQuantization("meta-llama/Llama-3.1-8B-Instruct", Bnb(true, skip: new JsonArray("mlp.down_proj")));
        Assert.Contains(downOnly.Quantization!.Converted(downOnly), c => c.Linear.Module == "lm_head");
        Assert.DoesNotContain(downOnly.Quantization.Converted(downOnly), c => c.Linear.Module.EndsWith("down_proj", StringComparison.Ordinal));
        var withHead = WithQuantization("meta-llama/Llama-3.1-8B-Instruct", Bnb(true, skip: new JsonArray("lm_head", "mlp.down_proj")));
        Assert.Equal(32 * 6, withHead.Quantization!.Converted(withHead).Count);

        // GPTQ: only block linears, narrowed by modules_in_block_to_quantize.
        var attentionOnly = Edited(WizardVicuna30BGptq, n => n["quantization_config"]!["modules_in_block_to_quantize"] =
            new JsonArray(new JsonArray("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), new JsonArray("self_attn.o_proj")));
        Assert.Equal(60 * 4, attentionOnly.Quantization!.Converted(attentionOnly).Count);
    }

    [Theory]
    [InlineData("hqq")]
    [InlineData("quanto")]
    [InlineData("eetq")]
    [InlineData("fbgemm_fp8")]
    public void An_unknown_method_names_the_key_and_the_fix(string method)
    {
        var e = Assert.Throws<InputError>(() => WithQuantization("meta-llama/Llama-3.1-8B-Instruct", new JsonObject { ["quant_method"] = method, ["bits"] = 4 }));
        Assert.Equal("config.json: quantization_config.quant_method", e.Field);
        Assert.Contains(method, e.Problem);
        Assert.Contains("gptq, awq or bitsandbytes", e.Fix);
    }

    [Fact]
    public void A_compressed_tensors_checkpoint_says_why_it_is_not_planned_and_what_to_plan()
    {
        var section = new JsonObject
        {
            ["quant_method"] = "compressed-tensors", ["format"] = "pack-quantized", ["quantization_status"] = "compressed",
            ["ignore"] = new JsonArray("lm_head"),
        };
        var e = Assert.Throws<InputError>(() => WithQuantization("meta-llama/Llama-3.1-8B-Instruct", section));
        Assert.Equal("config.json: quantization_config.quant_method", e.Field);
        Assert.Contains("depends on the compressed-tensors release", e.Problem);
        Assert.Contains("original 16-bit model", e.Fix);
        Assert.Equal([JobParameters.WeightsDtype], e.FixText.Parameters);
    }

    [Fact]
    public void Malformed_values_name_their_key()
    {
        string Field(Action<JsonObject> edit) => Assert.Throws<InputError>(() => Edited(WizardVicuna30BGptq, edit)).Field;
        JsonNode Q(JsonObject n) => n["quantization_config"]!;
        Assert.Equal("config.json: quantization_config.bits", Field(n => Q(n)["bits"] = 5));
        Assert.Equal("config.json: quantization_config.group_size", Field(n => Q(n)["group_size"] = 0));
        Assert.Equal("config.json: quantization_config.desc_act", Field(n => Q(n)["desc_act"] = "yes"));
        Assert.Equal("config.json: quantization_config", Field(n => n["quantization_config"] = "gptq"));
        Assert.Equal("config.json: quantization_config.quant_method", Field(n => Q(n).AsObject().Remove("quant_method")));
        Assert.Equal("config.json: quantization_config.checkpoint_format", Field(n => Q(n)["checkpoint_format"] = "marlin"));
        Assert.Equal("config.json: quantization_config.modules_in_block_to_quantize", Field(n => Q(n)["modules_in_block_to_quantize"] = new JsonArray("q_proj")));
        Assert.Equal("config.json: quantization_config.version",
            Assert.Throws<InputError>(() => WithQuantization("Qwen/Qwen3-32B", new JsonObject { ["quant_method"] = "awq", ["version"] = "gemv" })).Field);
        Assert.EndsWith("quantization_config.load_in_4bit",
            Assert.Throws<InputError>(() => WithQuantization("meta-llama/Llama-3.1-8B-Instruct", new JsonObject { ["quant_method"] = "bitsandbytes" })).Field);
        Assert.EndsWith("quantization_config.llm_int8_skip_modules",
            Assert.Throws<InputError>(() => WithQuantization("meta-llama/Llama-3.1-8B-Instruct", Bnb(true, skip: new JsonArray("(unclosed")))).Field);
        // --weights-dtype takes dtypes; a stored format's name says why it is not one.
        var flag = Assert.Throws<InputError>(() => DTypes.Parse("gptq-int4", JobParameters.WeightsDtype));
        Assert.Contains("stored format", flag.Problem);
    }

    [Fact]
    public void Families_that_read_their_own_format_and_plain_configs_are_unchanged()
    {
        // gpt_oss (mxfp4) and DeepSeek-V3 (fp8) keep their own handling.
        Assert.Null(ModelCatalog.Get("openai/gpt-oss-20b").Quantization);
        Assert.Null(ModelCatalog.Get("deepseek-ai/DeepSeek-V3").Quantization);
        Assert.Equal("mxfp4", Plan(ModelCatalog.Get("openai/gpt-oss-20b"), new Job { Task = JobTask.Infer, Seq = 512 }).Job.WeightsName);

        // Without quantization_config nothing moves: same job, same ledger.
        var plain = ModelCatalog.Get("meta-llama/Llama-3.1-8B-Instruct");
        Assert.Null(plain.Quantization);
        foreach (var job in new[] { new Job { Task = JobTask.Infer, Seq = 512 }, new Job { Method = TrainingMethod.QLora, Seq = 512 } })
        {
            var plan = Plan(plain, job);
            Assert.Equal(job, plan.Job);
            Assert.Equal(Ledger(plain, job).TotalBytes, plan.Ledger.TotalBytes);
        }
        Assert.Equal("bf16", Plan(plain, new Job { Task = JobTask.Infer, Seq = 512 }).Job.WeightsName);

        // A job planned on a quantized checkpoint loses that format when planned on a plain one.
        var gptqJob = Plan(HfConfigReader.Parse(WizardVicuna30BGptq), new Job { Task = JobTask.Infer, Seq = 512 }).Job;
        Assert.Null(Planner.Fit.Planner.ForCheckpoint(plain, gptqJob).Checkpoint);
    }
}
