using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;

namespace Afinado.Planner.Tests;

/// <summary>
/// gemma3_text as transformers' models/gemma3 defines it: Gemma3DecoderLayer (four norms), Gemma3Attention (q/k norms over
/// head_dim, query_pre_attn_scalar, no attention soft-capping) and Gemma3TextConfig's layer_types and defaults.
/// </summary>
public class Gemma3TextTests
{
    private static ParameterTensor Tensor(ModelArchitecture a, string name) => Assert.Single(a.Tensors, t => t.Name == name);

    private static ModelArchitecture Edited(Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-3-1b-it"))!.AsObject();
        edit(node);
        return HfConfigReader.Parse(node.ToJsonString(), "cfg.json");
    }

    private static int[] FullLayers(ModelArchitecture a) => Enumerable.Range(0, a.NumLayers).Where(i => !a.IsSlidingLayer(i)).ToArray();

    [Fact]
    public void One_b_has_gemma2_layers_with_head_dim_qk_norms()
    {
        var a = ModelCatalog.Get("google/gemma-3-1b-it");
        Assert.Equal("gemma3_text", a.ModelType);
        foreach (var n in new[] { "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm" })
            Assert.Equal([1152L], Tensor(a, $"model.layers.25.{n}.weight").Shape);
        Assert.Equal([256L], Tensor(a, "model.layers.0.self_attn.q_norm.weight").Shape);
        Assert.Equal([256L], Tensor(a, "model.layers.25.self_attn.k_norm.weight").Shape);
        // Six norms per layer (four around the blocks, q and k) and the final norm.
        Assert.Equal(6 * 26 + 1, a.Tensors.Count(t => t.Role == TensorRole.Norm));
        Assert.Equal(4, a.NormsPerLayer);
        Assert.True(a.QkNorm);
        // Four query heads and one key/value head of 256, from a hidden size of 1152 (not 1152 / 4).
        Assert.Equal([1024L, 1152], Tensor(a, "model.layers.0.self_attn.q_proj.weight").Shape);
        Assert.Equal([256L, 1152], Tensor(a, "model.layers.0.self_attn.v_proj.weight").Shape);
        Assert.Equal([1152L, 1024], Tensor(a, "model.layers.0.self_attn.o_proj.weight").Shape);
        Assert.DoesNotContain(a.Tensors, t => t.IsBias);
        Assert.True(a.TiedEmbeddings);
        Assert.DoesNotContain(a.Tensors, t => t.Role == TensorRole.LmHead);
        Assert.Equal(1.0, a.NormWeightOffset);
        Assert.Equal(Math.Sqrt(1152), a.EmbeddingMultiplier);
        Assert.Equal("gelu_pytorch_tanh", a.Activation);
    }

    [Fact]
    public void One_b_scales_by_query_pre_attn_scalar_and_soft_caps_nothing()
    {
        var a = ModelCatalog.Get("google/gemma-3-1b-it");
        Assert.Equal(256.0, a.QueryPreAttnScalar);
        Assert.Null(a.AttnLogitSoftcap);
        Assert.Null(a.FinalLogitSoftcap);
        Assert.Equal(1_000_000.0, a.RopeTheta);
        Assert.Equal(10_000.0, a.LocalRopeTheta);
        Assert.Equal(32768, a.MaxPositionEmbeddings);
    }

    [Fact]
    public void Sliding_window_pattern_six_makes_every_sixth_layer_global()
    {
        var a = ModelCatalog.Get("google/gemma-3-1b-it");
        Assert.Equal(512, a.SlidingWindow);
        Assert.Equal([5, 11, 17, 23], FullLayers(a));
        Assert.Equal([0, 1, 2], FullLayers(Edited(c => { c["num_hidden_layers"] = 3; c["sliding_window_pattern"] = 1; })));
        Assert.Equal([1, 3], FullLayers(Edited(c => { c["num_hidden_layers"] = 4; c["sliding_window_pattern"] = 2; })));
        // Without the key Gemma3TextConfig uses 6.
        Assert.Equal([5, 11], FullLayers(Edited(c => { c["num_hidden_layers"] = 12; c.Remove("sliding_window_pattern"); })));
    }

    [Fact]
    public void Layer_types_override_the_pattern()
    {
        var a = Edited(c =>
        {
            c["num_hidden_layers"] = 3;
            c["layer_types"] = new JsonArray("full_attention", "sliding_attention", "full_attention");
        });
        Assert.Equal([0, 2], FullLayers(a));
        Assert.Equal(3, a.NumLayers);
    }

    [Fact]
    public void Absent_keys_take_gemma3_text_config_defaults()
    {
        var a = Edited(c =>
        {
            foreach (var k in new[] { "sliding_window", "rope_theta", "rope_local_base_freq", "query_pre_attn_scalar", "max_position_embeddings", "hidden_activation" })
                c.Remove(k);
        });
        Assert.Equal(4096, a.SlidingWindow);
        Assert.Equal(1_000_000.0, a.RopeTheta);
        Assert.Equal(10_000.0, a.LocalRopeTheta);
        Assert.Equal(256.0, a.QueryPreAttnScalar);
        Assert.Equal(131_072, a.MaxPositionEmbeddings);
        Assert.Equal("gelu_pytorch_tanh", a.Activation);
    }

    [Fact]
    public void Attention_bias_and_untied_head_add_their_tensors()
    {
        var a = Edited(c => { c["attention_bias"] = true; c["tie_word_embeddings"] = false; c["final_logit_softcapping"] = 30.0; });
        foreach (var m in new[] { "q_proj", "k_proj", "v_proj", "o_proj" })
            Tensor(a, $"model.layers.0.self_attn.{m}.bias");
        Assert.Equal([1152L], Tensor(a, "model.layers.0.self_attn.o_proj.bias").Shape);
        Assert.Equal([262144L, 1152], Tensor(a, "lm_head.weight").Shape);
        Assert.Equal(30.0, a.FinalLogitSoftcap);
        // attn_logit_softcapping stays in the config but Gemma3Attention does not apply it.
        Assert.Null(Edited(c => c["attn_logit_softcapping"] = 50.0).AttnLogitSoftcap);
    }
}
