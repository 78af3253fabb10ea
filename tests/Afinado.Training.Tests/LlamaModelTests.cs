using Afinado.Planner.Catalog;
using Afinado.Training.Models;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

namespace Afinado.Training.Tests;

public class LlamaModelTests
{
    [Theory]
    [MemberData(nameof(TinyConfigs.All), MemberType = typeof(TinyConfigs))]
    public void Parameter_names_shapes_and_count_equal_the_planner_architecture(string json)
    {
        var arch = TinyConfigs.Parse(json);
        using var model = new LlamaForCausalLM(arch);
        var actual = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var expected = arch.Tensors.ToDictionary(t => t.Name, t => t.Shape);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in expected) Assert.Equal(shape, actual[name]);
        Assert.Equal(arch.ParameterCount, model.parameters().Sum(p => p.numel()));
    }

    [Theory]
    [MemberData(nameof(TinyConfigs.All), MemberType = typeof(TinyConfigs))]
    public void Backward_reaches_every_parameter_with_finite_gradients_under_both_kernels(string json)
    {
        // Gemma 2's soft-caps (tanh between a division and a multiplication) once ran in place, which autograd refuses at
        // backward ("modified by an inplace operation"): a forward alone could not tell.
        var arch = TinyConfigs.Parse(json);
        foreach (var kernel in new[] { AttentionKernel.Sdpa, AttentionKernel.Eager })
        {
            manual_seed(3);
            using var model = new LlamaForCausalLM(arch) { Attention = kernel };
            using var ids = randint(0, arch.VocabSize, new long[] { 2, 12 });
            using var logits = model.call(ids);
            using var loss = nn.functional.cross_entropy(logits.reshape(-1, arch.VocabSize), ids.reshape(-1));
            loss.backward();
            foreach (var (name, p) in model.named_parameters())
            {
                Assert.True(p.grad is not null, $"{kernel}: {name} got no gradient");
                Assert.True(p.grad!.isfinite().all().item<bool>(), $"{kernel}: {name} has a non-finite gradient");
            }
        }
    }

    [Fact]
    public void Catalog_Llama_3_1_8B_scaled_to_two_layers_matches_planner()
    {
        var real = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        var json = $$"""
            {"model_type":"llama","vocab_size":512,"hidden_size":{{real.HiddenSize / 64}},"num_hidden_layers":2,
             "num_attention_heads":{{real.NumHeads}},"num_key_value_heads":{{real.NumKvHeads}},
             "intermediate_size":{{real.IntermediateSize / 64}},"tie_word_embeddings":{{(real.TiedEmbeddings ? "true" : "false")}}}
            """;
        var arch = TinyConfigs.Parse(json);
        using var model = new LlamaForCausalLM(arch);
        Assert.Equal(arch.Tensors.Select(t => t.Name).Order(), model.named_parameters().Select(p => p.name).Order());
        Assert.Equal(arch.ParameterCount, model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Forward_gives_logits_and_sdpa_equals_eager_attention()
    {
        manual_seed(1);
        var arch = TinyConfigs.Parse(TinyConfigs.GqaTied);
        using var model = new LlamaForCausalLM(arch);
        using var ids = randint(0, arch.VocabSize, new long[] { 2, 9 });
        using var _ = no_grad();
        using var sdpa = model.call(ids);
        model.Attention = AttentionKernel.Eager;
        using var eager = model.call(ids);
        Assert.Equal(new long[] { 2, 9, arch.VocabSize }, sdpa.shape);
        Assert.True(sdpa.allclose(eager, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void Attention_is_causal_future_tokens_do_not_change_past_logits()
    {
        manual_seed(2);
        var arch = TinyConfigs.Parse(TinyConfigs.Llama);
        using var model = new LlamaForCausalLM(arch);
        using var a = randint(0, 256, new long[] { 1, 8 });
        using var b = a.clone();
        b[0, 7] = tensor(((a[0, 7].item<long>()) + 1) % 256);
        using var _ = no_grad();
        using var la = model.call(a);
        using var lb = model.call(b);
        Assert.True(la.narrow(1, 0, 7).allclose(lb.narrow(1, 0, 7), rtol: 1e-5, atol: 1e-6));
        Assert.False(la.narrow(1, 7, 1).allclose(lb.narrow(1, 7, 1), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void Gradient_checkpointing_gives_the_same_gradients()
    {
        var arch = TinyConfigs.Parse(TinyConfigs.GqaTied);
        manual_seed(3);
        using var ids = randint(0, arch.VocabSize, new long[] { 2, 10 });
        List<Tensor> Grads(bool checkpoint)
        {
            manual_seed(4);
            using var model = new LlamaForCausalLM(arch) { GradientCheckpointing = checkpoint };
            using var logits = model.call(ids);
            using var loss = logits.pow(2).mean();
            loss.backward();
            return model.parameters().Select(p => p.grad!.clone()).ToList();
        }
        var plain = Grads(false);
        var ckpt = Grads(true);
        Assert.Equal(plain.Count, ckpt.Count);
        for (int i = 0; i < plain.Count; i++) Assert.True(plain[i].allclose(ckpt[i], rtol: 1e-4, atol: 1e-6), $"gradient {i} differs");
    }
}

public class StateDictNamesTests
{
    [Fact]
    public void State_dict_has_exactly_the_hugging_face_names()
    {
        var arch = TinyConfigs.Parse(TinyConfigs.Llama);
        using var model = new LlamaForCausalLM(arch);
        Assert.Equal(arch.Tensors.Select(t => t.Name).Order(), model.state_dict().Keys.Order());
        Assert.Equal(arch.Tensors.Select(t => t.Name).Order(), model.named_parameters().Select(p => p.name).Order());
    }
}
