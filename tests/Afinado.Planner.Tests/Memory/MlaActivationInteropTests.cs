using System.Text.Json;
using Afinado.Planner.Architecture;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Afinado.Planner.Tests.GpuBench;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// DeepSeek's multi-head latent attention: the planner's attention-half activation lines (norms, attention linear inputs,
/// q/k/v and output, scores, LoRA) equal what PyTorch's autograd keeps (bench/interop/mla_saved.py runs the layer's
/// attention half on Debian's python3-torch and sums the saved storages of its graph), to the byte. What MLA keeps beyond a
/// plain attention: the fp32 upcasts of q_a_layernorm and kv_a_layernorm, the latent inputs of q_b_proj and kv_b_proj
/// when they train or carry an adapter, the concatenated query and key, and the values as a view that keeps all of
/// kv_b_proj's output (k_nope and v) alive.
/// </summary>
public class MlaActivationInteropTests
{
    private const int Tokens = 16, Hidden = 32, Heads = 4, KvRank = 8, Nope = 8, Rope = 4, ValueDim = 8;

    /// <summary>Every attention linear: the low-rank query pair, or one q_proj without a query rank.</summary>
    private static string[] AttentionLinears(int qRank) =>
        [.. qRank > 0 ? new[] { "q_a_proj", "q_b_proj" } : ["q_proj"], "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"];

    [Theory]
    [InlineData(12, "eager", "lora", false, "float32")]
    [InlineData(12, "eager", "lora", true, "float32")]
    [InlineData(12, "sdpa", "lora", false, "bfloat16")]
    [InlineData(12, "sdpa", "lora", true, "bfloat16")]
    [InlineData(0, "sdpa", "lora", true, "float32")]
    [InlineData(0, "eager", "lora", false, "bfloat16")]
    [InlineData(12, "eager", "full", true, "float32")]
    [InlineData(12, "sdpa", "full", true, "bfloat16")]
    [InlineData(0, "sdpa", "full", true, "float32")]
    [InlineData(12, "eager", "o_proj", true, "bfloat16")]
    [InlineData(12, "sdpa", "o_proj", true, "float32")]
    [InlineData(12, "flash", "lora", true, "bfloat16")]
    [InlineData(0, "flash", "full", true, "bfloat16")]
    [InlineData(12, "flash", "o_proj", true, "bfloat16")]
    // Three sequences: eager attention's batched matmul copies the values instead of keeping kv_b_proj's output.
    [InlineData(12, "eager", "lora", true, "bfloat16", 3)]
    [InlineData(12, "sdpa", "lora", true, "bfloat16", 3)]
    [InlineData(12, "flash", "lora", false, "bfloat16", 3)]
    public void Latent_attention_activations_equal_the_tensors_autograd_saves(int qRank, string kernel, string train, bool inputGrad, string dtype, int batch = 1)
    {
        bool bf16 = dtype == "bfloat16";
        var job = new Job
        {
            Method = train == "full" ? TrainingMethod.Full : TrainingMethod.Lora,
            Lora = train == "full" ? null : new LoraConfig { Rank = 4, Targets = train == "lora" ? AttentionLinears(qRank) : ["o_proj"], Dropout = 0 },
            AdapterDtype = train == "full" ? null : bf16 ? DType.Bf16 : DType.Fp32,
            Precision = bf16 ? Precision.Bf16 : Precision.Fp32,
            Attention = kernel switch { "eager" => AttentionKernel.Eager, "flash" => AttentionKernel.Flash, _ => AttentionKernel.Sdpa },
            Batch = batch,
            Seq = Tokens,
        };
        // The layer input needs a gradient when something before the layer trains: full finetuning trains the embedding;
        // with adapters, the second of two identical layers (its lines are the two-layer plan's less the one-layer plan's).
        double planned = inputGrad && train != "full"
            ? AttentionHalf(Model(qRank, 2), job) - AttentionHalf(Model(qRank, 1), job)
            : AttentionHalf(Model(qRank, 1), job);
        var (code, output) = GpuScript.RunPython(Path.Combine("bench", "interop", "mla_saved.py"),
            $"{Tokens}", $"{Hidden}", $"{Heads}", $"{qRank}", $"{KvRank}", $"{Nope}", $"{Rope}", $"{ValueDim}", dtype, kernel, train, inputGrad ? "1" : "0", $"{batch}");
        Assert.True(code == 0, output);
        using var measured = JsonDocument.Parse(output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0]);
        // The planner's norm lines count the row-wide tensors, not RMSNorm's per-row rsqrt (4 B a row).
        var root = measured.RootElement;
        Assert.Equal(root.GetProperty("saved_bytes").GetDouble() - root.GetProperty("row_statistics_bytes").GetDouble(), planned);
    }

    /// <summary>A dense DeepSeek-V3 decoder (no routed experts) of <paramref name="layers"/> layers.</summary>
    private static ModelArchitecture Model(int qRank, int layers) => HfConfigReader.Parse($$"""
        {"model_type":"deepseek_v3","vocab_size":256,"hidden_size":{{Hidden}},"intermediate_size":64,"num_hidden_layers":{{layers}},
         "num_attention_heads":{{Heads}},"num_key_value_heads":{{Heads}},"q_lora_rank":{{(qRank == 0 ? "null" : qRank.ToString())}},
         "kv_lora_rank":{{KvRank}},"qk_nope_head_dim":{{Nope}},"qk_rope_head_dim":{{Rope}},"v_head_dim":{{ValueDim}},
         "rms_norm_eps":1e-6,"max_position_embeddings":256,"tie_word_embeddings":false}
        """, "deepseek-mla-test.json");

    /// <summary>The attention half of the layers' activation lines: everything but the MLP's.</summary>
    private static double AttentionHalf(ModelArchitecture arch, Job job)
    {
        var plan = Fit.Planner.Create(arch, job, [GpuCatalog.Get("h100")], suggestFixes: false);
        LineKind[] kinds = [LineKind.ActivationsNorms, LineKind.ActivationsAttentionInputs, LineKind.ActivationsAttentionCore,
            LineKind.ActivationsAttentionScores, LineKind.ActivationsLora];
        return plan.Ledger.Tensors.Where(e => kinds.Contains(e.Kind)).Sum(e => e.Bytes);
    }
}
