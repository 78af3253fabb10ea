using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Afinado.Planner.Tests.GpuBench;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// gpt-oss's eager attention with sinks (the kernel transformers runs it with: it has no SDPA path) keeps what PyTorch's
/// autograd keeps: bench/interop/sinks_attention_saved.py runs transformers' eager_attention_forward for gpt_oss on
/// Debian's python3-torch and sums the saved storages besides q, k and v — the softmax over s + 1 columns in the logits'
/// dtype and the row maximum's indices. The generic eager model (an fp32 softmax and its 16-bit copy) kept 3× more per
/// score in bf16.
/// </summary>
public class SinksAttentionInteropTests
{
    [Theory]
    [InlineData(1, 64, 8, 2, 16, "float32")]
    [InlineData(2, 48, 4, 4, 16, "bfloat16")]
    [InlineData(1, 96, 8, 1, 8, "bfloat16")]
    public void Gpt_oss_eager_attention_scores_equal_the_tensors_autograd_saves(int batch, int seq, int heads, int kvHeads, int headDim, string dtype)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("openai/gpt-oss-20b"))!.AsObject();
        node.Remove("quantization_config");
        foreach (var (key, value) in new (string, int)[] { ("hidden_size", heads * headDim), ("intermediate_size", 32), ("num_local_experts", 4),
                     ("num_experts_per_tok", 2), ("experts_per_token", 2), ("num_hidden_layers", 1), ("num_attention_heads", heads),
                     ("num_key_value_heads", kvHeads), ("head_dim", headDim), ("vocab_size", 256) })
            node[key] = value;
        node["layer_types"] = new JsonArray("full_attention");
        var arch = HfConfigReader.Parse(node.ToJsonString(), "gpt-oss-test.json");
        AssertScoresEqualAutograd(arch, batch, seq, dtype, $"{batch}", $"{seq}", $"{heads}", $"{kvHeads}", $"{headDim}", dtype);
    }
    /// <summary>Llama 4's eager_attention_forward keeps its softmax in the scores' dtype (no fp32 cast): one b·a·s² tensor of
    /// the compute dtype per layer, which the product with V reads too. The generic eager model (fp32 softmax and its
    /// 16-bit copy) kept 3× more in bf16.</summary>
    [Theory]
    [InlineData(1, 64, 8, 2, 16, "bfloat16")]
    [InlineData(2, 48, 4, 4, 16, "float32")]
    [InlineData(1, 96, 8, 1, 8, "bfloat16")]
    public void Llama4_eager_attention_scores_equal_the_tensors_autograd_saves(int batch, int seq, int heads, int kvHeads, int headDim, string dtype)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("meta-llama/Llama-4-Scout-17B-16E"))!.AsObject();
        var text = node["text_config"]!.AsObject();
        foreach (var (key, value) in new (string, int)[] { ("hidden_size", heads * headDim), ("intermediate_size", 32), ("intermediate_size_mlp", 64),
                     ("num_local_experts", 4), ("num_experts_per_tok", 1), ("num_hidden_layers", 1), ("num_attention_heads", heads),
                     ("num_key_value_heads", kvHeads), ("head_dim", headDim), ("vocab_size", 256), ("interleave_moe_layer_step", 1) })
            text[key] = value;
        foreach (var key in new[] { "layer_types", "no_rope_layers", "moe_layers" }) text.Remove(key);
        var arch = HfConfigReader.Parse(node.ToJsonString(), "llama4-test.json");
        AssertScoresEqualAutograd(arch, batch, seq, dtype, "--llama4", $"{batch}", $"{seq}", $"{heads}", $"{kvHeads}", $"{headDim}", dtype);
    }
    /// <summary>Gemma 2's eager attention soft-caps the scores (scores / cap, tanh, · cap) before the fp32 softmax: tanh's
    /// output is one more b·a·s² tensor of the compute dtype per layer that autograd keeps.</summary>
    [Theory]
    [InlineData(1, 64, 8, 2, 16, "bfloat16")]
    [InlineData(2, 48, 4, 4, 16, "float32")]
    public void Gemma2_soft_capped_eager_attention_scores_equal_the_tensors_autograd_saves(int batch, int seq, int heads, int kvHeads, int headDim, string dtype)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-2-2b"))!.AsObject();
        foreach (var (key, value) in new (string, int)[] { ("hidden_size", heads * headDim), ("intermediate_size", 32), ("num_hidden_layers", 1),
                     ("num_attention_heads", heads), ("num_key_value_heads", kvHeads), ("head_dim", headDim), ("query_pre_attn_scalar", headDim),
                     ("vocab_size", 256) })
            node[key] = value;
        var arch = HfConfigReader.Parse(node.ToJsonString(), "gemma2-test.json");
        Assert.NotNull(arch.AttnLogitSoftcap);
        AssertScoresEqualAutograd(arch, batch, seq, dtype, "--gemma2", $"{batch}", $"{seq}", $"{heads}", $"{kvHeads}", $"{headDim}", dtype);
    }

    /// <summary>The plan's attention-scores line for LoRA on q/k/v with eager attention on an H100 equals the bytes the
    /// script measures besides q and the (repeated) k and v.</summary>
    private static void AssertScoresEqualAutograd(ModelArchitecture arch, int batch, int seq, string dtype, params string[] scriptArgs)
    {
        var job = new Job
        {
            Method = TrainingMethod.Lora,
            Lora = new LoraConfig { Targets = ["q_proj", "k_proj", "v_proj"], Dropout = 0 },
            Precision = dtype == "bfloat16" ? Precision.Bf16 : Precision.Fp32,
            Attention = AttentionKernel.Eager,
            Batch = batch,
            Seq = seq,
        };
        var plan = Fit.Planner.Create(arch, job, [GpuCatalog.Get("h100")], suggestFixes: false);
        double planned = plan.Ledger.Tensors.Single(e => e.Kind == LineKind.ActivationsAttentionScores).Bytes;
        var (code, output) = GpuScript.RunPython(Path.Combine("bench", "interop", "sinks_attention_saved.py"), scriptArgs);
        Assert.True(code == 0, output);
        using var measured = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0]);
        Assert.Equal(measured.RootElement.GetProperty("scores_bytes").GetDouble(), planned);
    }
}
