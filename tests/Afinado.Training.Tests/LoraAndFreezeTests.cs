using Afinado.Planner.Memory;
using Afinado.Training.Loop;
using Afinado.Training.Models;
using Afinado.Training.Optim;
using Afinado.Training.Selection;
using static TorchSharp.torch;

namespace Afinado.Training.Tests;

public class LoraAndFreezeTests
{
    private static LlamaForCausalLM Tiny(long seed)
    {
        manual_seed(seed);
        return new LlamaForCausalLM(TinyConfigs.Parse(TinyConfigs.GqaTied));
    }

    [Fact]
    public void Fresh_adapter_is_a_no_op_and_merged_model_equals_unmerged()
    {
        using var model = Tiny(10);
        using var ids = randint(0, 96, new long[] { 2, 12 });
        model.eval();
        using var _ = no_grad();
        using var before = model.call(ids);
        var sel = SharedSelection.CreateParameterSelection(model.Architecture, "lora", [], 4, 8, 0.0, ["all-linear"]);
        SelectionApplier.Apply(model, sel);
        using var fresh = model.call(ids);
        Assert.True(before.allclose(fresh, rtol: 0, atol: 0), "B = 0 must make the adapter an exact no-op");
        foreach (var (_, layer) in model.Linears()) nn.init.normal_(layer.LoraB!, 0, 0.05); // pretend training moved B
        using var unmerged = model.call(ids);
        Assert.False(unmerged.allclose(before, rtol: 1e-4, atol: 1e-4), "a non-zero adapter must change the output");
        SelectionApplier.MergeAdapters(model);
        Assert.DoesNotContain(model.named_parameters(), p => SelectionApplier.IsAdapter(p.name));
        using var merged = model.call(ids);
        Assert.True(merged.allclose(unmerged, rtol: 1e-4, atol: 1e-5), "merged W + (α/r)·B·A must equal the adapter path");
    }

    [Fact]
    public void Lora_init_and_names_follow_peft()
    {
        using var model = Tiny(11);
        var sel = SharedSelection.CreateParameterSelection(model.Architecture, "lora", [], 8, 16, 0.05, ["q_proj", "v_proj"]);
        var trainable = SelectionApplier.Apply(model, sel);
        Assert.All(trainable, t => Assert.True(SelectionApplier.IsAdapter(t.Name)));
        Assert.Contains(trainable, t => t.Name == "model.layers.0.self_attn.q_proj.lora_A.weight");
        var a = model.get_parameter("model.layers.0.self_attn.q_proj.lora_A.weight")!;
        var b = model.get_parameter("model.layers.0.self_attn.q_proj.lora_B.weight")!;
        Assert.Equal(new long[] { 8, 48 }, a.shape);
        Assert.Equal(new long[] { 48, 8 }, b.shape);
        double bound = 1 / Math.Sqrt(48); // kaiming_uniform(a=√5) on fan_in 48
        Assert.True(a.abs().max().item<float>() <= bound + 1e-6);
        Assert.True(a.abs().max().item<float>() > bound * 0.8);
        Assert.Equal(0f, b.abs().max().item<float>());
        // 3 layers × (q: 8·48 + 48·8, v: 8·48 + 16·8)
        Assert.Equal(3 * (8 * 48 + 48 * 8 + 8 * 48 + 16 * 8), trainable.Sum(t => t.Parameter.numel()));
        Assert.StartsWith("trainable params: 3,840 || all params:", SelectionApplier.PeftSummary(model));
    }

    [Fact]
    public void Frozen_parameters_get_no_grad_no_optimizer_state_and_do_not_change()
    {
        using var model = Tiny(12);
        var sel = SharedSelection.CreateParameterSelection(model.Architecture, "freeze", ["model.embed_tokens", "model.layers.0", "model.layers.1"], 0, 0, 0, []);
        var trainable = SelectionApplier.Apply(model, sel);
        var frozen = model.named_parameters().Where(p => !p.parameter.requires_grad).ToList();
        Assert.Contains(frozen, p => p.name == "model.layers.1.mlp.up_proj.weight");
        Assert.Contains(trainable, t => t.Name == "model.layers.2.mlp.up_proj.weight");
        var snapshot = frozen.ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var opt = new AdamW(trainable, 0.9, 0.95, 1e-8, 0.1);
        using var ids = randint(0, 96, new long[] { 2, 12 });
        for (int i = 0; i < 2; i++)
        {
            opt.ZeroGrad();
            using var loss = TrainingLoop.CrossEntropy(model.call(ids), ids);
            loss.backward();
            Assert.All(frozen, p => Assert.Null(p.parameter.grad));
            Assert.All(trainable, t => Assert.NotNull(t.Parameter.grad));
            opt.Step(1e-2);
        }
        var state = opt.StateDict();
        Assert.DoesNotContain(state.Keys, k => frozen.Any(f => k.EndsWith("/" + f.name, StringComparison.Ordinal)));
        Assert.Equal(2 * trainable.Count + 1, state.Count);
        Assert.All(frozen, p => Assert.True(p.parameter.Equals(snapshot[p.name]), p.name));
    }

    [Fact]
    public void Lora_training_leaves_the_base_untouched()
    {
        using var model = Tiny(13);
        var baseWeights = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var sel = SharedSelection.CreateParameterSelection(model.Architecture, "lora", [], 4, 8, 0.0, ["all-linear"]);
        var trainable = SelectionApplier.Apply(model, sel);
        var opt = new AdamW(trainable, 0.9, 0.95, 1e-8, 0.0);
        using var ids = randint(0, 96, new long[] { 2, 12 });
        using var loss = TrainingLoop.CrossEntropy(model.call(ids), ids);
        loss.backward();
        opt.Step(1e-2);
        foreach (var (name, w) in baseWeights)
        {
            Assert.Null(model.get_parameter(name)!.grad);
            Assert.True(model.get_parameter(name)!.Equals(w), name);
        }
        Assert.All(trainable.Where(t => t.Name.Contains("lora_B")), t => Assert.True(t.Parameter.abs().max().item<float>() > 0));
    }

    [Fact]
    public void Freeze_pattern_that_matches_nothing_is_an_input_error()
    {
        var arch = TinyConfigs.Parse(TinyConfigs.Llama);
        var e = Assert.Throws<InputError>(() => SharedSelection.CreateParameterSelection(arch, "freeze", ["model.decoder.*"], 0, 0, 0, []));
        Assert.Equal(JobParameters.FreezePatterns, e.Parameter);
    }
}
