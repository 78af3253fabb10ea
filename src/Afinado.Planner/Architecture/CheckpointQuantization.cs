using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Architecture;

/// <summary>The libraries whose pre-quantized checkpoints the planner counts tensor by tensor.</summary>
public enum QuantizedCheckpointMethod
{
    /// <summary>GPTQ as AutoGPTQ / GPTQModel pack it (optimum's <c>GPTQQuantizer</c> loads it into their <c>QuantLinear</c>).</summary>
    Gptq,
    /// <summary>AWQ as AutoAWQ's GEMM kernel packs it (<c>WQLinear_GEMM</c>).</summary>
    Awq,
    /// <summary>bitsandbytes <c>Linear4bit</c> (<c>Params4bit</c> + <c>QuantState</c>) or <c>Linear8bitLt</c> (<c>Int8Params</c>).</summary>
    BitsAndBytes,
}

/// <summary>One tensor a quantized linear holds in place of its 16-bit weight: name suffix, safetensors dtype, shape.</summary>
public sealed record StoredTensor(string Suffix, string Dtype, long[] Shape)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => checked(a * b));

    public int ElementBytes => Dtype switch
    {
        "I32" or "F32" => 4,
        "F16" or "BF16" => 2,
        "U8" or "I8" => 1,
        _ => throw new InvalidOperationException($"no size for dtype {Dtype}"),
    };

    public long Bytes => checked(Elements * ElementBytes);
}

/// <summary>A linear the checkpoint stores quantized, with the tensors its quantized module holds.</summary>
public sealed record ConvertedLinear(LinearLayer Linear, IReadOnlyList<StoredTensor> Tensors)
{
    public long Bytes => Tensors.Sum(t => t.Bytes);

    /// <summary>Parameters of the 16-bit linear these tensors replace: its weight, and its bias (kept 16-bit inside the module).</summary>
    public long Elements => Linear.InFeatures * Linear.OutFeatures + (Linear.HasBias ? Linear.OutFeatures : 0);
}

/// <summary>Bytes of a set of converted linears, by tensor name, and the largest one (what a kernel dequantizes at once).</summary>
public sealed record StoredWeights(int Linears, long Elements, long Bytes, long LargestLinear, IReadOnlyList<(string Suffix, long Bytes)> ByTensor)
{
    /// <summary>The working: how many linears and the bytes of each stored tensor kind.</summary>
    public string Breakdown =>
        $"{Linears.ToString("N0", CultureInfo.InvariantCulture)} linears: " +
        string.Join(" + ", ByTensor.Select(t => $"{t.Suffix} {t.Bytes.ToString("N0", CultureInfo.InvariantCulture)} B"));
}

/// <summary>
/// A GPTQ, AWQ or bitsandbytes checkpoint as its config's <c>quantization_config</c> describes it: which linears it stores
/// quantized and the exact tensors each of them holds, so weights are counted in the bytes the libraries allocate.
/// Everything else (embeddings, norms, the head unless bitsandbytes is told otherwise, and skipped modules) stays 16-bit.
/// </summary>
public sealed record QuantizedCheckpoint
{
    public required QuantizedCheckpointMethod Method { get; init; }
    /// <summary>Bits per quantized weight: GPTQ 2, 3, 4 or 8; AWQ 4; bitsandbytes 4 (<c>load_in_4bit</c>) or 8 (<c>load_in_8bit</c>).</summary>
    public required int Bits { get; init; }
    /// <summary>GPTQ / AWQ <c>group_size</c>: input features sharing one scale and zero; -1 means one group per column
    /// (the whole input width). Null for bitsandbytes, which blocks by 64 elements.</summary>
    public int? GroupSize { get; init; }
    /// <summary>GPTQ <c>desc_act</c> (act-order). It changes which group a column belongs to (<c>g_idx</c>), not what is stored:
    /// AutoGPTQ's QuantLinear registers <c>g_idx</c> whether or not it is set.</summary>
    public bool DescAct { get; init; }
    /// <summary>GPTQ <c>sym</c>: symmetric quantization (zeros are still stored in <c>qzeros</c>).</summary>
    public bool Symmetric { get; init; } = true;
    /// <summary>AWQ <c>zero_point</c> (WQLinear_GEMM stores <c>qzeros</c> either way).</summary>
    public bool ZeroPoint { get; init; } = true;
    /// <summary>bitsandbytes 4-bit <c>bnb_4bit_quant_type</c>: <c>nf4</c> or <c>fp4</c> (same storage, different code book).</summary>
    public string? QuantType { get; init; }
    /// <summary>bitsandbytes <c>bnb_4bit_use_double_quant</c>: the fp32 absmax per 64 weights is itself quantized to 8 bits.</summary>
    public bool DoubleQuant { get; init; }
    /// <summary><c>modules_to_not_convert</c> (AWQ) or <c>llm_int8_skip_modules</c> (bitsandbytes) as the config lists them.</summary>
    public IReadOnlyList<string> SkipModules { get; init; } = [];
    /// <summary>bitsandbytes with an explicit <c>llm_int8_skip_modules</c>: transformers then skips only those, not the head.</summary>
    public bool SkipListReplacesHead { get; init; }
    /// <summary>GPTQ <c>modules_in_block_to_quantize</c>, flattened: only block linears whose name ends with one of these are
    /// quantized; null means every linear in the decoder blocks.</summary>
    public IReadOnlyList<string>? BlockModules { get; init; }

    /// <summary>The format's name where a dtype would be shown (plan table, <c>plan --json</c>'s <c>job.weights_dtype</c>).</summary>
    public string Name => Method switch
    {
        QuantizedCheckpointMethod.Gptq => $"gptq-int{Bits}",
        QuantizedCheckpointMethod.Awq => $"awq-int{Bits}",
        _ => Bits == 8 ? "bnb-int8" : $"bnb-{QuantType}{(DoubleQuant ? "-dq" : "")}",
    };

    /// <summary>The ledger's words for it, e.g. <c>gptq 4-bit, group 128</c>.</summary>
    public string Description => Method switch
    {
        QuantizedCheckpointMethod.Gptq or QuantizedCheckpointMethod.Awq =>
            $"{(Method == QuantizedCheckpointMethod.Gptq ? "gptq" : "awq")} {Bits}-bit, {(GroupSize == -1 ? "one group per column" : $"group {GroupSize}")}" +
            (Method == QuantizedCheckpointMethod.Gptq && DescAct ? ", act-order" : ""),
        _ => Bits == 8 ? "bitsandbytes int8" : $"bitsandbytes {QuantType}{(DoubleQuant ? ", double quant" : "")}",
    };

    /// <summary>
    /// The planner's dtype class for the stored weights, for code that prices weights per element without the architecture
    /// (allocator replay, multi-GPU layouts, fix suggestions) and for the quantized-base rules (QLoRA needs one, full
    /// fine-tuning refuses one). The ledgers count the exact bytes from <see cref="Stored"/> instead.
    /// </summary>
    public DType Storage => Method == QuantizedCheckpointMethod.BitsAndBytes
        ? Bits == 8 ? DType.Int8 : DoubleQuant ? DType.Nf4Dq : DType.Nf4
        : Bits == 8 ? DType.Int8 : DType.Int4;

    /// <summary>Where the stored tensors' shapes come from, for the ledger's source column.</summary>
    public string Source => Method switch
    {
        QuantizedCheckpointMethod.Gptq => "AutoGPTQ QuantLinear (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py, qlinear_exllama.py): qweight int32 [in/32·bits, out], " +
            "qzeros int32 [⌈in/g⌉, out/32·bits], scales fp16 [⌈in/g⌉, out], g_idx int32 [in], bias fp16 [out]",
        QuantizedCheckpointMethod.Awq => "AutoAWQ WQLinear_GEMM (awq/modules/linear/gemm.py): qweight int32 [in, out/(32/bits)], qzeros int32 [in/g, out/(32/bits)], " +
            "scales fp16 [in/g, out], bias fp16 [out]",
        _ when Bits == 8 => "bitsandbytes Int8Params / Linear8bitLt (bitsandbytes/nn/modules.py): weight int8 [out, in], SCB fp32 [out]",
        _ => "bitsandbytes Params4bit + QuantState.as_dict (bitsandbytes/functional.py): weight uint8 [⌈in·out/2⌉, 1], absmax per 64 " +
            "(fp32, or uint8 + nested_absmax fp32 per 256 blocks + nested_quant_map 256 fp32 + offset fp32 with double quant), quant_map 16 fp32",
    };

    /// <summary>Which module names stay 16-bit, for the ledger's source column.</summary>
    public string SkipSource => Method switch
    {
        QuantizedCheckpointMethod.Gptq => "optimum GPTQQuantizer.convert_model: only linears inside the decoder blocks (modules_in_block_to_quantize)",
        QuantizedCheckpointMethod.Awq => "transformers AwqQuantizer: the head and quantization_config.modules_to_not_convert (quantizers_utils.should_convert_module)",
        _ => "transformers Bnb4Bit/Bnb8BitHfQuantizer: llm_int8_skip_modules, or the head when it is not set (quantizers_utils.should_convert_module)",
    };

    /// <summary>What dequantizes a whole linear at once, for the dequantization buffer's source column.</summary>
    public string KernelSource => Method switch
    {
        QuantizedCheckpointMethod.Gptq => "exllama v2 QuantLinear temp_dq scratch (in·out fp16 of the largest linear)",
        QuantizedCheckpointMethod.Awq => "AutoAWQ WQLinear_GEMM: dequantize_weights_cuda before torch.matmul on long inputs",
        _ => "bitsandbytes dequantize per matmul",
    };

    /// <summary>
    /// Whether transformers loads <paramref name="l"/> as a quantized module. GPTQ (optimum's convert_model) replaces the
    /// nn.Linear / Conv1D modules inside the decoder blocks, narrowed by <c>modules_in_block_to_quantize</c> (name ends with
    /// one of them). AWQ (transformers' replace_with_awq_linear) replaces every nn.Linear (not GPT-2's Conv1D) except the head
    /// and <c>modules_to_not_convert</c>. bitsandbytes (replace_with_bnb_linear) replaces nn.Linear and Conv1D except
    /// <c>llm_int8_skip_modules</c>, or except the head when that list is not given.
    /// </summary>
    public bool Converts(LinearLayer l) => Method switch
    {
        QuantizedCheckpointMethod.Gptq => l.Layer is not null && Packable(l)
            && (BlockModules is null || BlockModules.Any(m => l.Module.EndsWith(m, StringComparison.Ordinal))),
        QuantizedCheckpointMethod.Awq => !l.Conv1D && l.Role != TensorRole.LmHead && !Skipped(l.Module, SkipModules),
        _ => (SkipListReplacesHead || l.Role != TensorRole.LmHead) && !Skipped(l.Module, SkipModules),
    };

    /// <summary>
    /// GPTQ packs 32-bit words along both widths (qweight rows in/32·bits, qzeros columns out/32·bits), so a linear whose
    /// widths are not multiples of 32 cannot be stored packed: MoE routers (Mixtral's 8 outputs, Qwen MoE's 60 and its
    /// 1-output shared_expert_gate). AutoGPTQ's model definitions never list routers (inside_layer_modules) and vLLM loads
    /// them unquantized, so they are counted in 16 bits.
    /// </summary>
    private static bool Packable(LinearLayer l) => l.InFeatures % 32 == 0 && l.OutFeatures % 32 == 0;

    /// <summary>
    /// transformers' <c>should_convert_module</c> (quantizers/quantizers_utils.py), which replace_with_awq_linear and the
    /// bitsandbytes replacement call: a module stays unconverted when a pattern matches at the start of its name as a regular
    /// expression (<c>re.match</c>: <c>lm_head</c>, <c>model.layers.0.</c>, <c>model.layers.*</c>) or its name ends with the
    /// pattern (<c>gate</c> skips <c>mlp.gate</c> and <c>mlp.shared_expert_gate</c>).
    /// </summary>
    public static bool Skipped(string module, IReadOnlyList<string> patterns) =>
        patterns.Any(p => module.EndsWith(p, StringComparison.Ordinal) || StartsWithMatch(module, p));

    private static bool StartsWithMatch(string module, string pattern)
    {
        try
        {
            return Regex.IsMatch(module, $"\\A(?:{pattern})", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (RegexMatchTimeoutException)
        {
            // A pattern that backtracks for a second on a module name of a few dozen characters is not a module list a
            // quantizer was given; it skips nothing rather than hanging the plan.
            return false;
        }
    }

    /// <summary>The tensors <paramref name="l"/>'s quantized module holds, with the shapes the library registers.</summary>
    public IReadOnlyList<StoredTensor> Tensors(LinearLayer l)
    {
        long inF = l.InFeatures, outF = l.OutFeatures;
        var list = new List<StoredTensor>(6);
        switch (Method)
        {
            case QuantizedCheckpointMethod.Gptq:
            {
                // AutoGPTQ QuantLinear.__init__ (qlinear_cuda_old.py / qlinear_exllama.py): integer division as in Python.
                long g = GroupSize is null or -1 ? inF : GroupSize.Value;
                long groups = (inF + g - 1) / g;
                list.Add(new("qweight", "I32", [inF / 32 * Bits, outF]));
                list.Add(new("qzeros", "I32", [groups, outF / 32 * Bits]));
                list.Add(new("scales", "F16", [groups, outF]));
                list.Add(new("g_idx", "I32", [inF]));
                break;
            }
            case QuantizedCheckpointMethod.Awq:
            {
                // WQLinear_GEMM.__init__ (awq/modules/linear/gemm.py): eight 4-bit values per int32 along the output.
                long g = GroupSize is null or -1 ? inF : GroupSize.Value;
                long pack = 32 / Bits;
                list.Add(new("qweight", "I32", [inF, outF / pack]));
                list.Add(new("qzeros", "I32", [inF / g, outF / pack]));
                list.Add(new("scales", "F16", [inF / g, outF]));
                break;
            }
            default:
                if (Bits == 8)
                {
                    // Int8Params: the int8 codes [out, in] and one fp32 row scale (SCB) per output.
                    list.Add(new("weight", "I8", [outF, inF]));
                    list.Add(new("SCB", "F32", [outF]));
                    break;
                }
                // Params4bit: two 4-bit codes per byte; QuantState: one absmax per 64 weights and the 16-entry code book.
                // Double quantization stores absmax in 8 bits with its own QuantState (blocks of 256, a 256-entry dynamic
                // map) and the absmax mean subtracted first (offset: a float in the saved JSON, an fp32 scalar once loaded).
                long n = inF * outF;
                long blocks = (n + 63) / 64;
                list.Add(new("weight", "U8", [(n + 1) / 2, 1]));
                list.Add(new("weight.absmax", DoubleQuant ? "U8" : "F32", [blocks]));
                list.Add(new("weight.quant_map", "F32", [16]));
                if (DoubleQuant)
                {
                    list.Add(new("weight.nested_absmax", "F32", [(blocks + 255) / 256]));
                    list.Add(new("weight.nested_quant_map", "F32", [256]));
                    list.Add(new("weight.offset", "F32", []));
                }
                break;
        }
        if (l.HasBias) list.Add(new("bias", "F16", [outF]));
        return list;
    }

    // Per architecture (its tensor list) the converted linears are computed once: a fit search builds many ledgers.
    private static readonly ConditionalWeakTable<QuantizedCheckpoint, ConditionalWeakTable<IReadOnlyList<ParameterTensor>, IReadOnlyList<ConvertedLinear>>> Cache = new();

    /// <summary>Every linear of <paramref name="a"/> this checkpoint stores quantized, in module order.</summary>
    public IReadOnlyList<ConvertedLinear> Converted(ModelArchitecture a) =>
        Cache.GetValue(this, _ => new()).GetValue(a.Tensors, _ =>
            a.Linears.Where(Converts).Select(l => new ConvertedLinear(l, Tensors(l))).ToList().AsReadOnly());

    /// <summary>Bytes of the converted linears of <paramref name="a"/> (those <paramref name="include"/> accepts).</summary>
    public StoredWeights Stored(ModelArchitecture a, Func<LinearLayer, bool>? include = null)
    {
        var chosen = Converted(a).Where(c => include is null || include(c.Linear)).ToList();
        var byTensor = chosen.SelectMany(c => c.Tensors).GroupBy(t => t.Suffix)
            .Select(g => (g.Key, g.Sum(t => t.Bytes))).ToList();
        return new StoredWeights(chosen.Count, chosen.Sum(c => c.Elements), chosen.Sum(c => c.Bytes),
            chosen.Count == 0 ? 0 : chosen.Max(c => c.Linear.InFeatures * c.Linear.OutFeatures), byTensor);
    }
}

/// <summary>
/// Reads <c>quantization_config</c> for families that do not read their own (gpt_oss and DeepSeek do: MXFP4 and FP8), as
/// transformers' <c>AutoHfQuantizer</c> dispatches on <c>quant_method</c>: GPTQ (<c>GPTQConfig</c>), AWQ (<c>AwqConfig</c>)
/// and bitsandbytes (<c>BitsAndBytesConfig</c>, also recognised from <c>load_in_4bit</c> / <c>load_in_8bit</c> alone). Any
/// other method would be planned in bytes the planner does not know, so it names the key.
/// </summary>
public static class CheckpointQuantization
{
    private const string Restore = "Restore the value from the model's original config.json.";

    /// <summary>The config's <c>quantization_config</c> object and its <c>quant_method</c>; null when the config has none.
    /// Every reader of the section starts here (<see cref="Read"/>, <see cref="FamilyFormat"/>), so a malformed one is
    /// named alike whichever family reads it.</summary>
    internal static (JsonElement Section, string? Method)? Section(ConfigFields c)
    {
        if (c.Element("quantization_config") is not { } q) return null;
        if (q.ValueKind != JsonValueKind.Object)
            throw c.Invalid("quantization_config", "must be an object or null", Restore);
        return (q, String(c, q, "quant_method"));
    }

    /// <summary>A family whose checkpoints come in one format of its own (gpt_oss: mxfp4, DeepSeek: fp8): the section, or
    /// null without one; any other method is refused naming the key, with <paramref name="fix"/>.</summary>
    internal static JsonElement? FamilyFormat(ConfigFields c, string expected, string fix)
    {
        if (Section(c) is not { } s) return null;
        if (s.Method != expected)
            throw c.Invalid("quantization_config.quant_method", s.Method is null ? "is missing" : $"\"{Short(s.Method)}\" is not modelled for {c.OptionalString("model_type")}", fix);
        return s.Section;
    }

    private static string Short(string method) => TerminalText.Escape(method.Length > 40 ? method[..40] + "…" : method);

    public static QuantizedCheckpoint? Read(ConfigFields c, ModelArchitecture arch)
    {
        if (arch.CheckpointQuantMethod is not null) return null;
        if (Section(c) is not { } section) return null;
        var (q, method) = section;
        if (method is null && (Bool(c, q, "load_in_4bit", false) || Bool(c, q, "load_in_8bit", false)))
            method = "bitsandbytes";
        var checkpoint = method switch
        {
            null => throw c.Invalid("quantization_config.quant_method", "is missing",
                "Restore it from the model's original config.json (gptq, awq or bitsandbytes are planned in their stored bytes)."),
            "gptq" => Gptq(c, q),
            "awq" => Awq(c, q),
            "bitsandbytes" => BitsAndBytes(c, q),
            "compressed-tensors" => throw CompressedTensors(c),
            _ => throw c.Invalid("quantization_config.quant_method",
                $"\"{Short(method)}\" is not modelled for {arch.ModelType}",
                $"Plan a checkpoint quantized with gptq, awq or bitsandbytes, or a 16-bit export without quantization_config " +
                $"(then choose a storage with {JobParameters.WeightsDtype})."),
        };
        CheckShapes(c, checkpoint, arch);
        return checkpoint;
    }

    /// <summary>
    /// llm-compressor's checkpoints. Their bytes on disk are known, but what transformers holds depends on the
    /// compressed-tensors release, which a config does not name: CompressedLinear decompressed the weight at every forward
    /// (compressed-tensors PR #109, 2024), then once at the first forward, keeping it (PR #266, March 2025), and was
    /// removed in March 2026 (PR #610), the model decompressed to plain Linear weights after loading. Planning one of
    /// those would be a guess presented as a figure, so the error says which and what to plan instead.
    /// </summary>
    private static InputError CompressedTensors(ConfigFields c) => c.Invalid("quantization_config.quant_method",
        "\"compressed-tensors\" (llm-compressor) is not planned: what transformers holds depends on the compressed-tensors " +
        "release, which the config does not name (decompressed at every forward in 2024, once at the first forward and kept " +
        "from March 2025, decompressed to the model's dtype after loading since CompressedLinear was removed in March 2026)",
        $"Plan the original 16-bit model, which is what recent releases hold after loading (choose another storage with " +
        $"{JobParameters.WeightsDtype}), or a gptq, awq or bitsandbytes checkpoint; vLLM serves the compressed weights as they are.");

    private static QuantizedCheckpoint Gptq(ConfigFields c, JsonElement q)
    {
        int bits = Int(c, q, "bits") ?? throw c.Invalid("quantization_config.bits", "is missing", "GPTQ configs always give bits (2, 3, 4 or 8); " + Restore);
        if (bits is not (2 or 3 or 4 or 8))
            throw c.Invalid("quantization_config.bits", $"must be 2, 3, 4 or 8 for gptq, found {bits}", Restore);
        string format = String(c, q, "checkpoint_format") ?? "gptq";
        // gptq_v2 (GPTQModel) differs from v1 only in the zero-point offset inside qzeros, not in any shape; Marlin repacks.
        if (format is not ("gptq" or "gptq_v2") || Bool(c, q, "is_marlin_format", false))
            throw c.Invalid("quantization_config.checkpoint_format", $"\"{TerminalText.Escape(format)}\" repacks the weights in a layout the planner does not count",
                "Plan the gptq (or gptq_v2) checkpoint of the model instead.");
        return new QuantizedCheckpoint
        {
            Method = QuantizedCheckpointMethod.Gptq,
            Bits = bits,
            // GPTQConfig's default group size.
            GroupSize = Group(c, q, "group_size") ?? 128,
            DescAct = Bool(c, q, "desc_act", false),
            Symmetric = Bool(c, q, "sym", true),
            BlockModules = BlockModules(c, q),
        };
    }

    private static QuantizedCheckpoint Awq(ConfigFields c, JsonElement q)
    {
        // AutoAWQ writes bits / group_size into config.json; its own quant_config.json says w_bit / q_group_size.
        int bits = Int(c, q, "bits") ?? Int(c, q, "w_bit") ?? 4;
        string version = (String(c, q, "version") ?? "gemm").ToLowerInvariant();
        if (version != "gemm")
            throw c.Invalid("quantization_config.version", $"\"{TerminalText.Escape(version)}\" packs the weights in a layout the planner does not count (only gemm, WQLinear_GEMM)",
                "Plan the gemm checkpoint of the model instead.");
        if (bits != 4)
            throw c.Invalid("quantization_config.bits", $"must be 4 for awq (WQLinear_GEMM packs only 4-bit weights), found {bits}", Restore);
        return new QuantizedCheckpoint
        {
            Method = QuantizedCheckpointMethod.Awq,
            Bits = bits,
            GroupSize = Group(c, q, "group_size") ?? Group(c, q, "q_group_size") ?? 128,
            ZeroPoint = Bool(c, q, "zero_point", true),
            SkipModules = Strings(c, q, "modules_to_not_convert") ?? [],
        };
    }

    private static QuantizedCheckpoint BitsAndBytes(ConfigFields c, JsonElement q)
    {
        bool four = Bool(c, q, "load_in_4bit", false), eight = Bool(c, q, "load_in_8bit", false);
        if (four == eight)
            throw c.Invalid("quantization_config.load_in_4bit", four ? "and load_in_8bit are both true" : "and load_in_8bit are both false or missing",
                "A bitsandbytes checkpoint is either 4-bit or 8-bit: " + Restore);
        string type = String(c, q, "bnb_4bit_quant_type") ?? "fp4";
        if (four && type is not ("nf4" or "fp4"))
            throw c.Invalid("quantization_config.bnb_4bit_quant_type", $"must be nf4 or fp4, found \"{TerminalText.Escape(type)}\"", Restore);
        if (eight && Bool(c, q, "llm_int8_has_fp16_weight", false))
            throw c.Invalid("quantization_config.llm_int8_has_fp16_weight", "keeps 16-bit weights next to the int8 ones, which the planner does not count",
                "Plan the checkpoint with llm_int8_has_fp16_weight false (inference), as saved int8 checkpoints have it.");
        var skip = Strings(c, q, "llm_int8_skip_modules");
        return new QuantizedCheckpoint
        {
            Method = QuantizedCheckpointMethod.BitsAndBytes,
            Bits = four ? 4 : 8,
            QuantType = four ? type : null,
            DoubleQuant = four && Bool(c, q, "bnb_4bit_use_double_quant", false),
            SkipModules = skip ?? [],
            SkipListReplacesHead = skip is not null,
        };
    }

    /// <summary>WQLinear_GEMM asserts these (awq/modules/linear/gemm.py); a config it would refuse is refused here, naming the key
    /// that fixes it.</summary>
    private static void CheckShapes(ConfigFields c, QuantizedCheckpoint q, ModelArchitecture arch)
    {
        if (q.Method != QuantizedCheckpointMethod.Awq) return;
        foreach (var l in arch.Linears.Where(q.Converts))
        {
            long g = q.GroupSize is null or -1 ? l.InFeatures : q.GroupSize.Value;
            if (l.OutFeatures % 8 != 0)
                throw c.Invalid("quantization_config.modules_to_not_convert", $"does not list {l.Module} ({l.InFeatures:N0} → {l.OutFeatures:N0}), and awq packs out_features 8 to an int32",
                    "Restore the list from the model's original config.json (AWQ MoE checkpoints list their router, e.g. \"gate\").");
            if (l.InFeatures % g != 0)
                throw c.Invalid("quantization_config.group_size", $"{g:N0} does not divide the in_features of {l.Module} ({l.InFeatures:N0})", Restore);
        }
    }

    private static JsonElement? Get(JsonElement q, string key) =>
        q.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private static string? String(ConfigFields c, JsonElement q, string key) => Get(q, key) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        _ => throw c.Invalid($"quantization_config.{key}", "must be a string", Restore),
    };

    private static bool Bool(ConfigFields c, JsonElement q, string key, bool fallback) => Get(q, key) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw c.Invalid($"quantization_config.{key}", "must be true or false", Restore),
    };

    private static int? Int(ConfigFields c, JsonElement q, string key) => Get(q, key) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt32(out int i) => i,
        _ => throw c.Invalid($"quantization_config.{key}", "must be a whole number", Restore),
    };

    /// <summary>A group size: positive, or -1 for one group per column (GPTQQuantizer: "must be greater than 0 or equal to -1").</summary>
    private static int? Group(ConfigFields c, JsonElement q, string key)
    {
        int? g = Int(c, q, key);
        if (g is null or -1 || g > 0 && g <= ConfigFields.MaxDimension) return g;
        throw c.Invalid($"quantization_config.{key}", $"must be a positive number of input features or -1 (one group per column), found {g}", Restore);
    }

    /// <summary>A list of module-name patterns (null when absent); each must compile as transformers' re.match would use it.</summary>
    private static IReadOnlyList<string>? Strings(ConfigFields c, JsonElement q, string key)
    {
        if (Get(q, key) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || e.GetString()!.Length == 0))
            throw c.Invalid($"quantization_config.{key}", "must be a list of module names", Restore);
        var list = v.EnumerateArray().Select(e => e.GetString()!).ToList();
        foreach (var p in list)
        {
            try
            {
                _ = new Regex($"\\A(?:{p})", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException)
            {
                throw c.Invalid($"quantization_config.{key}", $"\"{TerminalText.Escape(p.Length > 40 ? p[..40] + "…" : p)}\" is not a module name or pattern transformers can match",
                    "List module names such as lm_head or mlp.gate.");
            }
        }
        return list;
    }

    /// <summary>GPTQ <c>modules_in_block_to_quantize</c>: a list of lists of names (optimum flattens them), or null.</summary>
    private static IReadOnlyList<string>? BlockModules(ConfigFields c, JsonElement q)
    {
        if (Get(q, "modules_in_block_to_quantize") is not { } v) return null;
        static bool Names(JsonElement e) => e.ValueKind == JsonValueKind.Array && e.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String && s.GetString()!.Length > 0);
        if (v.ValueKind != JsonValueKind.Array || !v.EnumerateArray().All(Names))
            throw c.Invalid("quantization_config.modules_in_block_to_quantize", "must be a list of lists of module names", Restore);
        return v.EnumerateArray().SelectMany(e => e.EnumerateArray()).Select(s => s.GetString()!).ToList();
    }
}
