using Afinado.Planner.Memory;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Selection;

namespace Afinado.Planner.Tests.Selection;

public class TrainableSelectionTests
{
    private static ModelArchitecture Llama31 => ModelCatalog.Get("meta-llama/Llama-3.1-8B");
    private static ModelArchitecture Llama2 => ModelCatalog.Get("meta-llama/Llama-2-7b-hf");

    [Fact]
    public void Llama2_7B_lora_r8_q_v_matches_PEFTs_printed_line()
    {
        // PEFT's README / docs print exactly this for Llama-2-7b with r=8 on q_proj,v_proj.
        var s = TrainableSelection.Create(Llama2, TrainingMethod.Lora, lora: new LoraConfig { Rank = 8, Targets = ["q_proj", "v_proj"] });
        Assert.Equal("trainable params: 4,194,304 || all params: 6,742,609,920 || trainable%: 0.0622", s.PeftSummary);
        Assert.Equal(0, s.TrainableBaseParameters);
        Assert.Equal(128, s.Adapters.Count);
    }

    [Fact]
    public void Adapters_have_PEFT_names_and_shapes()
    {
        var s = TrainableSelection.Create(Llama31, TrainingMethod.Lora, lora: new LoraConfig { Rank = 16, Targets = ["k_proj"] });
        var a = s.Adapters.Single(x => x.Name == "model.layers.0.self_attn.k_proj.lora_A.weight");
        var b = s.Adapters.Single(x => x.Name == "model.layers.0.self_attn.k_proj.lora_B.weight");
        Assert.Equal([16L, 4096L], a.Shape);
        Assert.Equal([1024L, 16L], b.Shape);
        Assert.Equal("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight", a.PeftFileName);
        Assert.True(s.IsTrainable(a.Name));
        Assert.False(s.IsTrainable("model.layers.0.self_attn.k_proj.weight"));
    }

    [Fact]
    public void All_linear_adapts_every_projection_but_not_the_head()
    {
        var s = TrainableSelection.Create(Llama31, TrainingMethod.Lora, lora: new LoraConfig { Rank = 16 });
        Assert.Equal(32 * 7, s.AdaptedLinears.Count);
        Assert.DoesNotContain(s.AdaptedLinears, t => t.Role == TensorRole.LmHead);
        // per layer: r·(in+out) for q(4096→4096) k,v(4096→1024) o(4096→4096) gate,up(4096→14336) down(14336→4096)
        long perLayer = 16L * ((4096 + 4096) * 2 + (4096 + 1024) * 2 + (4096 + 14336) * 3);
        Assert.Equal(32 * perLayer, s.AdapterParameters);
        Assert.Equal(41_943_040L, s.AdapterParameters);
    }

    [Fact]
    public void Unknown_target_lists_the_models_linear_modules()
    {
        var e = Assert.Throws<InputError>(() => TrainableSelection.Create(Llama31, TrainingMethod.Lora, lora: new LoraConfig { Targets = ["c_attn"] }));
        Assert.Equal(JobParameters.LoraTargets, e.Parameter);
        Assert.Contains("q_proj", e.Message);
        Assert.Contains("down_proj", e.Message);
        Assert.Contains("lm_head", e.Message);
    }

    [Fact]
    public void Freeze_patterns_use_segment_and_cross_segment_globs()
    {
        var s = TrainableSelection.Create(Llama31, TrainingMethod.Freeze, ["model.embed_tokens", "model.layers.{0..15}", "**.input_layernorm.*"]);
        Assert.False(s.IsTrainable("model.embed_tokens.weight"));
        Assert.False(s.IsTrainable("model.layers.15.mlp.down_proj.weight"));
        Assert.True(s.IsTrainable("model.layers.16.mlp.down_proj.weight"));
        Assert.False(s.IsTrainable("model.layers.31.input_layernorm.weight"));
        Assert.True(s.IsTrainable("lm_head.weight"));
        Assert.Equal(s.BaseParameters, s.TrainableBaseParameters + s.FrozenBaseTensors.Sum(t => t.Elements));
    }

    [Fact]
    public void Single_star_does_not_cross_dots()
    {
        var p = new TensorPattern("model.layers.*.mlp.up_proj.weight");
        Assert.True(p.Matches("model.layers.7.mlp.up_proj.weight"));
        Assert.False(new TensorPattern("model.*.up_proj.weight").Matches("model.layers.7.mlp.up_proj.weight"));
        Assert.True(new TensorPattern("model.**.up_proj.weight").Matches("model.layers.7.mlp.up_proj.weight"));
        Assert.False(new TensorPattern("model.layers.1").Matches("model.layers.10.mlp.up_proj.weight"));
    }

    [Fact]
    public void Full_trains_everything_and_reports_100_percent()
    {
        var s = TrainableSelection.Full(Llama31);
        Assert.Equal(8_030_261_248L, s.TrainableParameters);
        Assert.EndsWith("trainable%: 100.0000", s.PeftSummary);
    }

    [Theory]
    [InlineData("model.nothing")]
    [InlineData("**")]
    [InlineData("model.layers.{3..1}")]
    [InlineData("model.layers.{0..3")]
    public void Bad_freeze_patterns_are_input_errors(string pattern)
    {
        var e = Assert.Throws<InputError>(() => TrainableSelection.Create(Llama31, TrainingMethod.Freeze, [pattern]));
        Assert.Equal(JobParameters.FreezePatterns, e.Parameter);
    }

    [Fact]
    public void Freeze_patterns_with_lora_or_full_are_rejected()
    {
        Assert.Throws<InputError>(() => TrainableSelection.Create(Llama31, TrainingMethod.Lora, ["model.embed_tokens"]));
        Assert.Throws<InputError>(() => TrainableSelection.Create(Llama31, TrainingMethod.Full, ["model.embed_tokens"]));
        Assert.Throws<InputError>(() => TrainableSelection.Create(Llama31, TrainingMethod.Freeze));
    }

    [Fact]
    public void Bad_lora_rank_is_an_input_error()
    {
        var e = Assert.Throws<InputError>(() => TrainableSelection.Create(Llama31, TrainingMethod.Lora, lora: new LoraConfig { Rank = 0 }));
        Assert.Equal(JobParameters.LoraRank, e.Parameter);
    }
}

public class Gpt2SelectionTests
{
    [Fact]
    public void Conv1D_adapters_use_in_and_out_features_not_the_stored_layout()
    {
        // GPT-2 stores c_fc as [in 768, out 3072]; PEFT's lora_A is [r, in] and lora_B is [out, r].
        var arch = ModelCatalog.Get("openai-community/gpt2");
        var s = TrainableSelection.Create(arch, TrainingMethod.Lora, lora: new LoraConfig { Rank = 8, Targets = ["c_fc"] });
        var a = s.Adapters.Single(x => x.Name == "transformer.h.0.mlp.c_fc.lora_A.weight");
        var b = s.Adapters.Single(x => x.Name == "transformer.h.0.mlp.c_fc.lora_B.weight");
        Assert.Equal([8L, 768L], a.Shape);
        Assert.Equal([3072L, 8L], b.Shape);
    }
}
