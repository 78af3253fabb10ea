using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;

namespace Afinado.Planner.Tests;

/// <summary>Tensor names, shapes and block structure as transformers defines them for each model type.</summary>
public class ArchitectureLayoutTests
{
    private static ParameterTensor Tensor(ModelArchitecture a, string name) => Assert.Single(a.Tensors, t => t.Name == name);

    [Fact]
    public void Gpt2_uses_conv1d_layout_in_out_with_correct_linear_widths()
    {
        var a = ModelCatalog.Get("openai-community/gpt2");
        var cAttn = Tensor(a, "transformer.h.0.attn.c_attn.weight");
        Assert.Equal([768L, 2304], cAttn.Shape);
        Assert.True(cAttn.Conv1D);
        Assert.Equal(768, cAttn.InFeatures);
        Assert.Equal(2304, cAttn.OutFeatures);
        Assert.Equal([2304L], Tensor(a, "transformer.h.0.attn.c_attn.bias").Shape);
        Assert.Equal([3072L, 768], Tensor(a, "transformer.h.11.mlp.c_proj.weight").Shape);
        Assert.Equal([1024L, 768], Tensor(a, "transformer.wpe.weight").Shape);
        Assert.True(a.TiedEmbeddings);
        Assert.DoesNotContain(a.Tensors, t => t.Role == TensorRole.LmHead);
        Assert.Equal(PositionKind.Learned, a.Positions);
        var fc = Assert.Single(a.Linears, l => l.Module == "transformer.h.3.mlp.c_fc");
        Assert.Equal((768L, 3072L, true, true), (fc.InFeatures, fc.OutFeatures, fc.HasBias, fc.Conv1D));
        Assert.Equal(0.1, a.ResidualDropout);
    }

    [Fact]
    public void Starcoder_family_is_multi_query_with_linear_layout()
    {
        var a = ModelCatalog.Get("bigcode/octocoder");
        Assert.Equal(1, a.NumKvHeads);
        var cAttn = Tensor(a, "transformer.h.0.attn.c_attn.weight");
        Assert.Equal([6144L + 2 * 128, 6144], cAttn.Shape);
        Assert.False(cAttn.Conv1D);
        Assert.Equal(6144, cAttn.InFeatures);
        Assert.Equal(2L * 40 * 1 * 128 * 2, a.KvBytesPerToken(2));
    }

    [Fact]
    public void Gemma2_has_four_norms_per_layer_soft_capping_and_alternating_window()
    {
        var a = ModelCatalog.Get("google/gemma-2-9b");
        Assert.Equal(4, a.NormsPerLayer);
        foreach (var n in new[] { "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm" })
            Tensor(a, $"model.layers.41.{n}.weight");
        Assert.Equal(4 * 42 + 1, a.Tensors.Count(t => t.Role == TensorRole.Norm));
        Assert.Equal(50.0, a.AttnLogitSoftcap);
        Assert.Equal(30.0, a.FinalLogitSoftcap);
        Assert.Equal(256.0, a.QueryPreAttnScalar);
        Assert.Equal(4096, a.SlidingWindow);
        // Gemma2Config: layer i slides when (i + 1) is odd, so even layers slide and odd ones attend globally.
        Assert.Equal(Enumerable.Range(0, 42).Select(i => i % 2 == 0), Enumerable.Range(0, 42).Select(a.IsSlidingLayer));
        Assert.Null(a.LocalRopeTheta);
        Assert.Equal(1.0, a.NormWeightOffset);
        Assert.Equal(Math.Sqrt(3584), a.EmbeddingMultiplier);
        Assert.True(a.TiedEmbeddings);
        Assert.Equal([4096L, 3584], Tensor(a, "model.layers.0.self_attn.q_proj.weight").Shape);
    }

    [Fact]
    public void Gemma2_reads_layer_types_when_a_newer_transformers_saved_them()
    {
        // Gemma2Config now stores layer_types; an explicit list wins over the even/odd default.
        var json = System.Text.Json.Nodes.JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-2-2b"))!.AsObject();
        int layers = (int)json["num_hidden_layers"]!;
        json["layer_types"] = new System.Text.Json.Nodes.JsonArray(Enumerable.Range(0, layers)
            .Select(i => (System.Text.Json.Nodes.JsonNode?)(i < 3 ? "full_attention" : "sliding_attention")).ToArray());
        var a = HfConfigReader.Parse(json.ToJsonString());
        Assert.Equal([0, 1, 2], Enumerable.Range(0, layers).Where(i => !a.IsSlidingLayer(i)));
    }

    [Fact]
    public void Gemma_head_dim_is_not_hidden_over_heads()
    {
        var a = ModelCatalog.Get("google/gemma-7b");
        Assert.Equal(256, a.HeadDim);
        Assert.Equal([3072L, 4096], Tensor(a, "model.layers.0.self_attn.o_proj.weight").Shape);
        // hidden_activation is null in the released config; transformers then uses the tanh GeLU, not hidden_act "gelu".
        Assert.Equal("gelu_pytorch_tanh", a.Activation);
    }

    [Fact]
    public void Qwen2_biases_qkv_only_and_qwen3_has_qk_norms()
    {
        var q2 = ModelCatalog.Get("Qwen/Qwen2.5-0.5B");
        Assert.Equal([128L], Tensor(q2, "model.layers.0.self_attn.k_proj.bias").Shape);
        Assert.DoesNotContain(q2.Tensors, t => t.Name == "model.layers.0.self_attn.o_proj.bias");
        Assert.True(q2.TiedEmbeddings);
        Assert.Null(q2.SlidingWindow);
        var q3 = ModelCatalog.Get("Qwen/Qwen3-0.6B");
        Assert.Equal([128L], Tensor(q3, "model.layers.27.self_attn.q_norm.weight").Shape);
        Assert.Equal([2048L, 1024], Tensor(q3, "model.layers.0.self_attn.q_proj.weight").Shape);
        Assert.DoesNotContain(q3.Tensors, t => t.IsBias);
    }

    [Fact]
    public void Phi3_fuses_qkv_and_gate_up()
    {
        var a = ModelCatalog.Get("microsoft/Phi-3-mini-4k-instruct");
        Assert.Equal([9216L, 3072], Tensor(a, "model.layers.0.self_attn.qkv_proj.weight").Shape);
        Assert.Equal([16384L, 3072], Tensor(a, "model.layers.0.mlp.gate_up_proj.weight").Shape);
        Assert.Equal(TensorRole.MlpGateUp, Tensor(a, "model.layers.0.mlp.gate_up_proj.weight").Role);
        Assert.Equal(MlpKind.Gated, a.Mlp);
    }

    [Fact]
    public void Phi2_is_parallel_with_one_layernorm_partial_rope_and_biased_head()
    {
        var a = ModelCatalog.Get("microsoft/phi-2");
        Assert.True(a.ParallelResidual);
        Assert.Equal(1, a.NormsPerLayer);
        Assert.Equal(32, a.RotaryDim);
        Assert.Equal([51200L], Tensor(a, "lm_head.bias").Shape);
        Tensor(a, "model.layers.31.input_layernorm.bias");
        Tensor(a, "model.final_layernorm.weight");
        Assert.Equal(MlpKind.Plain, a.Mlp);
    }

    [Fact]
    public void Pythia_uses_neox_names_parallel_residual_and_untied_embed_out()
    {
        var a = ModelCatalog.Get("EleutherAI/pythia-70m");
        Assert.Equal([1536L, 512], Tensor(a, "gpt_neox.layers.0.attention.query_key_value.weight").Shape);
        Assert.Equal([50304L, 512], Tensor(a, "embed_out.weight").Shape);
        Assert.True(a.ParallelResidual);
        Assert.False(a.TiedEmbeddings);
        Assert.Equal(16, a.RotaryDim);
        Assert.Equal("gpt_neox.", a.BaseModelPrefix);
    }

    [Fact]
    public void Llama_lists_seven_linears_per_layer_plus_head()
    {
        var a = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        Assert.Equal(32 * 7 + 1, a.Linears.Count);
        Assert.All(a.Linears, l => Assert.False(l.HasBias));
        var k = Assert.Single(a.Linears, l => l.Module == "model.layers.0.self_attn.k_proj");
        Assert.Equal((4096L, 1024L), (k.InFeatures, k.OutFeatures));
        Assert.Equal("k_proj", k.ShortName);
        Assert.Equal(2, a.NormsPerLayer);
        Assert.False(a.ParallelResidual);
    }

    [Fact]
    public void Tied_lm_head_is_counted_once()
    {
        var tied = HfConfigReader.Parse(ModelCatalog.ConfigJson("meta-llama/Llama-3.2-1B"));
        var untied = HfConfigReader.Parse(ModelCatalog.ConfigJson("meta-llama/Llama-3.2-1B").Replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"));
        Assert.Equal(128256L * 2048, untied.ParameterCount - tied.ParameterCount);
    }

    [Fact]
    public void Rope_scaling_is_read_for_llama_3_1_and_absent_for_llama_2()
    {
        var a = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        Assert.Equal(new RopeScaling("llama3", 8.0, 1.0, 4.0, 8192), a.RopeScaling);
        Assert.Equal(500000.0, a.RopeTheta);
        Assert.Equal(4, a.KvGroups);
        Assert.Null(ModelCatalog.Get("meta-llama/Llama-2-7b-hf").RopeScaling);
    }
}
