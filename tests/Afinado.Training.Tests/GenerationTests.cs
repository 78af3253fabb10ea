using Afinado.Planner;
using Afinado.Training.Generation;
using Afinado.Training.Models;
using Afinado.Training.Tokenization;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

namespace Afinado.Training.Tests;

/// <summary>Generation with a KV cache computes what the training forward computes over the whole sequence.</summary>
public class GenerationTests
{
    private static LlamaForCausalLM Model(AttentionKernel kernel)
    {
        manual_seed(11);
        // GQA (6 heads, 2 kv heads), untied head: every path of the cached attention.
        return new LlamaForCausalLM(TinyConfigs.Parse(TinyConfigs.GqaTied.Replace("\"tie_word_embeddings\":true", "\"tie_word_embeddings\":false").Replace("\"vocab_size\":96", "\"vocab_size\":256")), kernel);
    }

    [Theory]
    [InlineData(AttentionKernel.Sdpa)]
    [InlineData(AttentionKernel.Eager)]
    public void Cached_steps_give_the_logits_of_the_full_forward(AttentionKernel kernel)
    {
        using var model = Model(kernel);
        model.eval();
        using var _ = no_grad();
        long[] ids = [5, 17, 200, 3, 99, 42, 7, 128, 64, 1];
        using var cache = new KvCache(model.Model.Layers.Count);
        for (int n = 6; n <= ids.Length; n++)
        {
            using var scope = NewDisposeScope();
            var input = n == 6 ? tensor(ids[..6]).unsqueeze(0) : tensor(new[] { ids[n - 1] }).unsqueeze(0);
            var stepped = model.Step(input, cache)[0];
            var full = model.call(tensor(ids[..n]).unsqueeze(0))[0, n - 1];
            Assert.True(stepped.allclose(full, rtol: 1e-4, atol: 1e-5), $"position {n - 1}: max |Δ| {(stepped - full).abs().max().item<float>()}");
            Assert.Equal(n, cache.Length);
        }
    }

    /// <summary>Sliding layers under a cache: each decode step past the window sees only the last window of keys, as the
    /// full forward's windowed mask does (Gemma 2: window 8; Gemma 3 text: window 8, local RoPE base; Phi-3: every layer).</summary>
    [Theory]
    [InlineData(nameof(TinyConfigs.Gemma2), AttentionKernel.Eager)]
    [InlineData(nameof(TinyConfigs.Gemma3Text), AttentionKernel.Sdpa)]
    [InlineData(nameof(TinyConfigs.Gemma3Text), AttentionKernel.Eager)]
    [InlineData(nameof(TinyConfigs.Phi3), AttentionKernel.Sdpa)]
    public void Cached_steps_past_a_sliding_window_give_the_logits_of_the_full_forward(string config, AttentionKernel kernel)
    {
        manual_seed(13);
        string json = config switch { nameof(TinyConfigs.Gemma2) => TinyConfigs.Gemma2, nameof(TinyConfigs.Phi3) => TinyConfigs.Phi3, _ => TinyConfigs.Gemma3Text };
        using var model = new LlamaForCausalLM(TinyConfigs.Parse(json), kernel, initStd: 0.3);
        model.eval();
        using var _ = no_grad();
        long[] ids = Enumerable.Range(0, 20).Select(i => (long)(i * 37 % 320)).ToArray();
        using var cache = new KvCache(model.Model.Layers.Count);
        for (int n = 5; n <= ids.Length; n++)
        {
            using var scope = NewDisposeScope();
            var input = n == 5 ? tensor(ids[..5]).unsqueeze(0) : tensor(new[] { ids[n - 1] }).unsqueeze(0);
            var stepped = model.Step(input, cache)[0];
            var full = model.call(tensor(ids[..n]).unsqueeze(0))[0, n - 1];
            Assert.True(stepped.allclose(full, rtol: 1e-4, atol: 1e-5), $"position {n - 1}: max |Δ| {(stepped - full).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void A_tokenizer_larger_than_the_vocabulary_works_until_an_input_uses_a_missing_row()
    {
        // Byte ids (256) on a 128-row model: ASCII fits; "ñ" is UTF-8 0xC3 0xB1, past the table.
        manual_seed(3);
        using var model = new LlamaForCausalLM(TinyConfigs.Parse(TinyConfigs.Qwen3Scaled));
        var tokenizer = new ByteTokenizer();
        var options = new SamplingOptions { MaxNewTokens = 3, StopIds = [] };
        var fits = TextGenerator.Run(model, tokenizer, "hola", options);
        Assert.NotEmpty(fits.Tokens);
        Assert.All(fits.Tokens, t => Assert.InRange(t.Id, 0, 127));
        var e = Assert.Throws<InputError>(() => TextGenerator.Run(model, tokenizer, "año", options));
        Assert.Equal("prompt", e.Field);
        Assert.Contains("token id 195", e.Message);
        Assert.Contains("vocab_size 128", e.Message);
    }

    [Fact]
    public void Greedy_generation_equals_argmax_of_the_full_forward_step_by_step()
    {
        using var model = Model(AttentionKernel.Sdpa);
        var tokenizer = new ByteTokenizer();
        var result = TextGenerator.Run(model, tokenizer, "Hola, ", new SamplingOptions { MaxNewTokens = 8, StopIds = [] });
        var ids = tokenizer.Encode("Hola, ").Select(i => (long)i).ToList();
        using var _ = no_grad();
        foreach (var token in result.Tokens)
        {
            using var scope = NewDisposeScope();
            var logits = model.call(tensor(ids.ToArray()).unsqueeze(0))[0, -1];
            Assert.Equal(logits.argmax().item<long>(), token.Id);
            Assert.Equal(logits.to(ScalarType.Float64).log_softmax(-1)[token.Id].item<double>(), token.LogProbability, 1e-5);
            ids.Add(token.Id);
        }
        Assert.Equal(tokenizer.Encode("Hola, ").Length, result.PromptIds.Length);
    }

    [Fact]
    public void Sampling_is_seeded_and_top_k_of_one_is_greedy()
    {
        using var model = Model(AttentionKernel.Sdpa);
        var tokenizer = new ByteTokenizer();
        var sampled = new SamplingOptions { MaxNewTokens = 12, Temperature = 1.5, TopP = 0.9, Seed = 7 };
        var a = TextGenerator.Run(model, tokenizer, "abc", sampled);
        var b = TextGenerator.Run(model, tokenizer, "abc", sampled);
        Assert.Equal(a.Tokens.Select(t => t.Id), b.Tokens.Select(t => t.Id));
        var greedy = TextGenerator.Run(model, tokenizer, "abc", new SamplingOptions { MaxNewTokens = 12 });
        var topOne = TextGenerator.Run(model, tokenizer, "abc", sampled with { TopK = 1 });
        Assert.Equal(greedy.Tokens.Select(t => t.Id), topOne.Tokens.Select(t => t.Id));
    }

    [Fact]
    public void A_stop_token_ends_the_generation_and_bad_options_name_the_flag()
    {
        using var model = Model(AttentionKernel.Sdpa);
        var tokenizer = new ByteTokenizer();
        int first = TextGenerator.Run(model, tokenizer, "xyz", new SamplingOptions { MaxNewTokens = 1 }).Tokens[0].Id;
        var stopped = TextGenerator.Run(model, tokenizer, "xyz", new SamplingOptions { MaxNewTokens = 20, StopIds = [first] });
        Assert.Single(stopped.Tokens);
        Assert.Equal("stop_token", stopped.StopReason);
        Assert.Contains(GenerationParameters.TopP.Name, Assert.Throws<InputError>(() => TextGenerator.Run(model, tokenizer, "xyz", new SamplingOptions { TopP = 0 })).Message);
        Assert.Contains(GenerationParameters.MaxNewTokens.Name, Assert.Throws<InputError>(() => TextGenerator.Run(model, tokenizer, "xyz", new SamplingOptions { MaxNewTokens = 100_000 })).Message);
    }
}
