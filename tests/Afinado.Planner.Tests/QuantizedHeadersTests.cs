using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Safetensors;
using Afinado.TestSupport;

namespace Afinado.Planner.Tests;

/// <summary>
/// Checkpoints stored in their quantized layouts — gpt-oss's MXFP4 expert stacks (the hub index's
/// <c>mlp.experts.gate_up_proj_blocks</c> [E, 2·I, hidden/32, 16] and <c>_scales</c> [E, 2·I, hidden/32], uint8) and
/// DeepSeek's FP8 linears (e4m3 <c>weight</c> beside an fp32 <c>weight_scale_inv</c> per 128×128 block) — written here
/// name by name as those checkpoints name them: <c>inspect</c> finds every parameter, and the planned inference weights
/// equal the headers' bytes.
/// </summary>
public sealed class QuantizedHeadersTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-qheaders-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Folder(string name, string config, IEnumerable<(string, string, long[])> tensors)
    {
        string dir = Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;
        File.WriteAllText(Path.Combine(dir, "config.json"), config);
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        return dir;
    }

    private static double PlannedWeights(ModelArchitecture a)
    {
        var plan = Planner.Fit.Planner.Create(a, new Job { Task = JobTask.Infer, Seq = 16 }, []);
        return plan.Ledger.Tensors.Where(e => e.Kind is LineKind.Weights or LineKind.WeightsFrozenQuantized or LineKind.WeightsSkippedByQuantizer).Sum(e => e.Bytes);
    }

    [Fact]
    public void A_gpt_oss_mxfp4_checkpoint_matches_its_config_and_weighs_what_is_planned()
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("openai/gpt-oss-20b"))!.AsObject();
        node["num_hidden_layers"] = 2;
        node["layer_types"] = new JsonArray("sliding_attention", "full_attention");
        string config = node.ToJsonString();
        const long H = 2880, I = 2880, E = 32, V = 201088;
        IEnumerable<(string, string, long[])> Tensors()
        {
            yield return ("model.embed_tokens.weight", "BF16", [V, H]);
            for (int i = 0; i < 2; i++)
            {
                string p = $"model.layers.{i}.";
                yield return (p + "input_layernorm.weight", "BF16", [H]);
                yield return (p + "post_attention_layernorm.weight", "BF16", [H]);
                foreach (var (n, o, inF) in new[] { ("q_proj", 4096L, H), ("k_proj", 512L, H), ("v_proj", 512L, H), ("o_proj", H, 4096L) })
                {
                    yield return ($"{p}self_attn.{n}.weight", "BF16", [o, inF]);
                    yield return ($"{p}self_attn.{n}.bias", "BF16", [o]);
                }
                yield return (p + "self_attn.sinks", "BF16", [64]);
                yield return (p + "mlp.router.weight", "BF16", [E, H]);
                yield return (p + "mlp.router.bias", "BF16", [E]);
                yield return (p + "mlp.experts.gate_up_proj_blocks", "U8", [E, 2 * I, H / 32, 16]);
                yield return (p + "mlp.experts.gate_up_proj_scales", "U8", [E, 2 * I, H / 32]);
                yield return (p + "mlp.experts.gate_up_proj_bias", "BF16", [E, 2 * I]);
                yield return (p + "mlp.experts.down_proj_blocks", "U8", [E, H, I / 32, 16]);
                yield return (p + "mlp.experts.down_proj_scales", "U8", [E, H, I / 32]);
                yield return (p + "mlp.experts.down_proj_bias", "BF16", [E, H]);
            }
            yield return ("model.norm.weight", "BF16", [H]);
            yield return ("lm_head.weight", "BF16", [V, H]);
        }
        string dir = Folder("gpt-oss", config, Tensors());
        var result = CheckpointInspection.Run(dir);
        Assert.True(result.Consistent, string.Join("; ", result.Comparison!.Missing.Concat(result.Comparison.Unexpected).Concat(result.Comparison.WrongShape.Select(w => w.Name))));
        Assert.Equal(result.Checkpoint.TotalBytes, PlannedWeights(result.Architecture!), 0.5);
    }

    [Fact]
    public void A_deepseek_fp8_checkpoint_matches_its_config_and_weighs_what_is_planned()
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("deepseek-ai/DeepSeek-V3"))!.AsObject();
        node["num_hidden_layers"] = 2;
        node["first_k_dense_replace"] = 1;
        node["n_routed_experts"] = 4;
        node["num_experts_per_tok"] = 2;
        node["n_group"] = 1;
        node["topk_group"] = 1;
        string config = node.ToJsonString();
        const long H = 7168, V = 129280;
        static long Blocks(long n) => (n + 127) / 128;
        IEnumerable<(string, string, long[])> Linear(string name, long outF, long inF)
        {
            yield return (name + ".weight", "F8_E4M3", [outF, inF]);
            yield return (name + ".weight_scale_inv", "F32", [Blocks(outF), Blocks(inF)]);
        }
        IEnumerable<(string, string, long[])> Tensors()
        {
            yield return ("model.embed_tokens.weight", "BF16", [V, H]);
            for (int i = 0; i < 2; i++)
            {
                string p = $"model.layers.{i}.";
                yield return (p + "input_layernorm.weight", "BF16", [H]);
                yield return (p + "post_attention_layernorm.weight", "BF16", [H]);
                foreach (var t in Linear(p + "self_attn.q_a_proj", 1536, H)) yield return t;
                yield return (p + "self_attn.q_a_layernorm.weight", "BF16", [1536]);
                foreach (var t in Linear(p + "self_attn.q_b_proj", 128 * 192, 1536)) yield return t;
                foreach (var t in Linear(p + "self_attn.kv_a_proj_with_mqa", 576, H)) yield return t;
                yield return (p + "self_attn.kv_a_layernorm.weight", "BF16", [512]);
                foreach (var t in Linear(p + "self_attn.kv_b_proj", 128 * 256, 512)) yield return t;
                foreach (var t in Linear(p + "self_attn.o_proj", H, 128 * 128)) yield return t;
                if (i == 0)
                {
                    foreach (var t in Linear(p + "mlp.gate_proj", 18432, H)) yield return t;
                    foreach (var t in Linear(p + "mlp.up_proj", 18432, H)) yield return t;
                    foreach (var t in Linear(p + "mlp.down_proj", H, 18432)) yield return t;
                    continue;
                }
                for (int e = 0; e < 4; e++)
                {
                    foreach (var t in Linear($"{p}mlp.experts.{e}.gate_proj", 2048, H)) yield return t;
                    foreach (var t in Linear($"{p}mlp.experts.{e}.up_proj", 2048, H)) yield return t;
                    foreach (var t in Linear($"{p}mlp.experts.{e}.down_proj", H, 2048)) yield return t;
                }
                yield return (p + "mlp.gate.weight", "BF16", [4, H]);
                yield return (p + "mlp.gate.e_score_correction_bias", "F32", [4]);
                foreach (var t in Linear(p + "mlp.shared_experts.gate_proj", 2048, H)) yield return t;
                foreach (var t in Linear(p + "mlp.shared_experts.up_proj", 2048, H)) yield return t;
                foreach (var t in Linear(p + "mlp.shared_experts.down_proj", H, 2048)) yield return t;
            }
            yield return ("model.norm.weight", "BF16", [H]);
            yield return ("lm_head.weight", "BF16", [V, H]);
        }
        string dir = Folder("deepseek", config, Tensors());
        var result = CheckpointInspection.Run(dir);
        Assert.True(result.Consistent, string.Join("; ", result.Comparison!.Missing.Concat(result.Comparison.Unexpected).Concat(result.Comparison.WrongShape.Select(w => w.Name))));
        Assert.Equal(result.Checkpoint.TotalBytes, PlannedWeights(result.Architecture!), 0.5);
    }

    [Fact]
    public void A_plain_checkpoint_of_a_quantized_config_is_missing_its_packed_tensors()
    {
        // The bf16 tensors of a gpt-oss export against the hub's mxfp4 config: the blocks and scales are named as missing.
        var a = ModelCatalog.Get("openai/gpt-oss-20b");
        var layout = StoredLayout.Of(a);
        Assert.Contains(layout, e => e.Stored == "model.layers.0.mlp.experts.down_proj_blocks" && e.Shape.SequenceEqual(new long[] { 32, 2880, 90, 16 }));
        var cmp = CheckpointComparison.Compare(a, a.Tensors.Select(t => new SafetensorsTensor(t.Name, "BF16", t.Shape, 0, 0, "x")));
        Assert.Contains("model.layers.0.mlp.experts.gate_up_proj", cmp.Missing);
        Assert.Contains("model.layers.0.mlp.experts.gate_up_proj", cmp.Unexpected);
    }
}
