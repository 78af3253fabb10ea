using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;
using Afinado.TestSupport;

namespace Afinado.Planner.Tests;

/// <summary>
/// A model_type without a family, planned from its checkpoint's safetensors headers: weights exactly as stored, roles from
/// tensor names, the unread config keys named, and a plan labelled generic.
/// </summary>
public sealed class GenericDecoderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-generic-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const int Hidden = 256, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 64, Vocab = 1000, Inter = 512;

    private static IEnumerable<(string, string, long[])> Dense(bool moe = false)
    {
        yield return ("model.embed_tokens.weight", "BF16", [Vocab, Hidden]);
        for (int i = 0; i < Layers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return (p + "input_layernorm.weight", "F32", [Hidden]);
            yield return (p + "self_attn.q_proj.weight", "BF16", [Heads * HeadDim, Hidden]);
            yield return (p + "self_attn.k_proj.weight", "BF16", [KvHeads * HeadDim, Hidden]);
            yield return (p + "self_attn.v_proj.weight", "BF16", [KvHeads * HeadDim, Hidden]);
            yield return (p + "self_attn.o_proj.weight", "BF16", [Hidden, Heads * HeadDim]);
            yield return (p + "self_attn.rotary_emb.inv_freq", "F32", [HeadDim / 2]);
            yield return (p + "post_attention_layernorm.weight", "F32", [Hidden]);
            if (moe)
            {
                yield return (p + "block_sparse_moe.gate.weight", "BF16", [4, Hidden]);
                for (int e = 0; e < 4; e++)
                {
                    yield return ($"{p}block_sparse_moe.experts.{e}.w1.weight", "BF16", [Inter, Hidden]);
                    yield return ($"{p}block_sparse_moe.experts.{e}.w2.weight", "BF16", [Hidden, Inter]);
                    yield return ($"{p}block_sparse_moe.experts.{e}.w3.weight", "BF16", [Inter, Hidden]);
                }
            }
            else
            {
                yield return (p + "mlp.gate_proj.weight", "BF16", [Inter, Hidden]);
                yield return (p + "mlp.up_proj.weight", "BF16", [Inter, Hidden]);
                yield return (p + "mlp.down_proj.weight", "BF16", [Hidden, Inter]);
            }
        }
        yield return ("model.norm.weight", "F32", [Hidden]);
        yield return ("lm_head.weight", "BF16", [Vocab, Hidden]);
    }

    private string Folder(string modelType, bool moe = false, Action<JsonObject>? edit = null, bool weights = true)
    {
        var config = new JsonObject
        {
            ["model_type"] = modelType, ["hidden_size"] = Hidden, ["num_hidden_layers"] = Layers, ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads, ["vocab_size"] = Vocab, ["intermediate_size"] = Inter, ["rms_norm_eps"] = 1e-6,
            ["sliding_window"] = 64, ["novel_mixer_blocks"] = 3,
        };
        if (moe) config["num_experts_per_tok"] = 2;
        edit?.Invoke(config);
        string dir = Directory.CreateDirectory(Path.Combine(_dir, modelType + (moe ? "-moe" : ""))).FullName;
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        if (weights) SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), Dense(moe));
        return dir;
    }

    [Fact]
    public void An_unknown_decoder_is_read_from_its_headers_with_roles_from_tensor_names()
    {
        var a = ModelSource.Resolve(Folder("novadecoder"));
        Assert.Equal(ModelSupport.Generic, a.Support);
        long elements = Dense().Sum(t => t.Item3.Aggregate(1L, (x, y) => x * y));
        Assert.Equal(elements, a.ParameterCount);
        // BF16 tensors at 2 B, the F32 norms and rotary buffer at 4 B: the headers' own bytes.
        long bytes = Dense().Sum(t => t.Item3.Aggregate(1L, (x, y) => x * y) * (t.Item2 == "F32" ? 4 : 2));
        Assert.Equal(bytes, a.StoredWeightBytes);
        Assert.Equal(TensorRole.AttnQ, Assert.Single(a.Tensors, t => t.Name == "model.layers.1.self_attn.q_proj.weight").Role);
        Assert.Equal(TensorRole.MlpDown, Assert.Single(a.Tensors, t => t.Name == "model.layers.0.mlp.down_proj.weight").Role);
        Assert.Equal(TensorRole.Other, Assert.Single(a.Tensors, t => t.Name == "model.layers.0.self_attn.rotary_emb.inv_freq").Role);
        Assert.Equal(TensorRole.LmHead, Assert.Single(a.Tensors, t => t.Name == "lm_head.weight").Role);
        Assert.Equal(Layers * 7 + 1, a.Linears.Count);
        Assert.Equal(MlpKind.Gated, a.Mlp);
        Assert.Equal(HeadDim, a.HeadDim);
        // The keys it does not read are named; the ones it reads are not.
        var warning = Assert.Single(a.Warnings);
        Assert.Contains("novel_mixer_blocks", warning);
        Assert.Contains("sliding_window", warning);
        Assert.DoesNotContain("hidden_size", warning);
    }

    [Fact]
    public void Inference_weighs_the_checkpoint_as_stored_and_the_plan_says_generic()
    {
        var a = ModelSource.Resolve(Path.Combine(Folder("novadecoder"), "config.json"));
        var plan = Planner.Fit.Planner.Create(a, new Job { Task = JobTask.Infer, Seq = 256 }, [GpuCatalog.Get("h100")]);
        var weights = Assert.Single(plan.Ledger.Tensors, e => e.Kind == LineKind.Weights);
        Assert.Equal(a.StoredWeightBytes!.Value, weights.Bytes, tolerance: 0.5);
        Assert.Null(plan.Ledger.Replay);
        using var json = JsonDocument.Parse(PlanJson.Serialize(plan));
        var model = json.RootElement.GetProperty("model");
        Assert.Equal("generic", model.GetProperty("support").GetString());
        Assert.Contains("novel_mixer_blocks", model.GetProperty("warnings")[0].GetString());
        Assert.Equal("stored", json.RootElement.GetProperty("job").GetProperty("weights_dtype").GetString());
        // A dtype the user asks for replaces the stored one.
        var bf16 = Planner.Fit.Planner.Create(a, new Job { Task = JobTask.Infer, Seq = 256, WeightsDtype = DType.Fp32 }, []);
        Assert.Equal(4.0 * a.ParameterCount, Assert.Single(bf16.Ledger.Tensors, e => e.Kind == LineKind.Weights).Bytes, tolerance: 0.5);
    }

    [Fact]
    public void Lora_training_targets_the_recognised_projections()
    {
        var a = ModelSource.Resolve(Folder("novadecoder"));
        var plan = Planner.Fit.Planner.Create(a, new Job { Method = TrainingMethod.Lora, Seq = 128 }, [GpuCatalog.Get("h100")]);
        Assert.True(plan.Selection.AdapterParameters > 0);
        Assert.True(plan.Ledger.PeakBytes > a.ParameterCount * 2);
    }

    [Fact]
    public void Per_expert_modules_make_a_moe_whose_routing_width_is_required()
    {
        var a = ModelSource.Resolve(Folder("novamoe", moe: true));
        Assert.Equal(4, a.NumExperts);
        Assert.Equal(2, a.ExpertsPerToken);
        Assert.Equal(TensorRole.Router, Assert.Single(a.Tensors, t => t.Name == "model.layers.0.block_sparse_moe.gate.weight").Role);
        Assert.Equal(3, Assert.Single(a.Tensors, t => t.Name == "model.layers.1.block_sparse_moe.experts.3.w2.weight").Expert);
        Assert.True(a.ActiveParameterCount < a.ParameterCount);
        var e = Assert.Throws<InputError>(() => ModelSource.Resolve(Folder("novamoe2", moe: true, edit: c => c.Remove("num_experts_per_tok"))));
        Assert.Contains("num_experts_per_tok", e.Message);
    }

    [Fact]
    public void Without_a_checkpoint_an_unknown_type_is_refused_with_the_way_to_plan_it()
    {
        var e = Assert.Throws<InputError>(() => ModelSource.Resolve(Folder("novadecoder", weights: false)));
        Assert.Contains("model_type", e.Message);
        Assert.Contains(".safetensors", e.Message);
    }

    [Fact]
    public void A_known_type_beside_a_checkpoint_keeps_its_exact_family()
    {
        var dir = Folder("llama", edit: c => c["head_dim"] = HeadDim);
        Assert.Equal(ModelSupport.Exact, ModelSource.Resolve(dir).Support);
    }
}
