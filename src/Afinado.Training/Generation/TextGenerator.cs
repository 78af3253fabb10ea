using Afinado.Planner;
using Afinado.Training.Models;
using Afinado.Training.Tokenization;
using static TorchSharp.torch;

namespace Afinado.Training.Generation;

/// <summary>How to pick each next token. Temperature 0 is greedy; otherwise logits / temperature, then top-k, then
/// top-p (the smallest set whose probability reaches p), sampled from a generator seeded with <see cref="Seed"/>.</summary>
public sealed record SamplingOptions
{
    public int MaxNewTokens { get; init; } = 64;
    public double Temperature { get; init; } = 0;
    public int TopK { get; init; }
    public double TopP { get; init; } = 1.0;
    public long Seed { get; init; } = 1;
    /// <summary>Token ids that end the generation (the tokenizer's end of text is always one).</summary>
    public IReadOnlyCollection<int> StopIds { get; init; } = [];

    public void Validate()
    {
        InputRange.Whole(GenerationParameters.MaxNewTokens, MaxNewTokens, 1, 1_000_000);
        InputRange.Real(GenerationParameters.Temperature, Temperature, 0, 100, hint: "0 is greedy");
        InputRange.Whole(GenerationParameters.TopK, TopK, 0, 10_000_000, "0 keeps every token");
        InputRange.Real(GenerationParameters.TopP, TopP, 1e-9, 1, hint: "1 keeps every token");
    }
}

/// <summary>One generated token: its id, its text piece, and its log-probability under the model (temperature 1, before
/// top-k/top-p), which is what a caller scores or calibrates with.</summary>
public sealed record GeneratedToken(int Id, string Text, double LogProbability);

public sealed record Generation(int[] PromptIds, IReadOnlyList<GeneratedToken> Tokens, string Text, string StopReason);

/// <summary>
/// Autoregressive generation with a KV cache: the prompt in one pass, then one token per step, each attending over the
/// cached keys and values (the same math as the training forward over the whole sequence: <c>GenerationTests</c>).
/// </summary>
public static class TextGenerator
{
    public static Generation Run(LlamaForCausalLM model, ITextTokenizer tokenizer, string prompt, SamplingOptions options, Action<GeneratedToken>? onToken = null) =>
        Run(model, tokenizer, tokenizer.Encode(prompt), options, onToken);

    /// <summary>Generation from prompt ids already encoded (a chat template's rendering, encoded without added special tokens).</summary>
    public static Generation Run(LlamaForCausalLM model, ITextTokenizer tokenizer, int[] promptIds, SamplingOptions options, Action<GeneratedToken>? onToken = null)
    {
        options.Validate();
        if (promptIds.Length == 0)
            throw new InputError("prompt", "is empty after tokenization", "Give a prompt with some text.");
        VocabularyFit.Check(tokenizer, model.Architecture.VocabSize, promptIds, "prompt", "the prompt");
        int maxPositions = model.Architecture.MaxPositionEmbeddings;
        if (promptIds.Length + options.MaxNewTokens > maxPositions)
            throw new InputError(GenerationParameters.MaxNewTokens, $"the prompt ({promptIds.Length} tokens) plus {options.MaxNewTokens} new tokens exceeds max_position_embeddings ({maxPositions})",
                $"Use {GenerationParameters.MaxNewTokens} {Math.Max(1, maxPositions - promptIds.Length)} or less, or a shorter prompt.");
        var stops = new HashSet<int>(options.StopIds) { tokenizer.EndOfText };
        model.eval();
        using var noGrad = no_grad();
        using var cache = new KvCache(model.Model.Layers.Count);
        using var rng = new TorchSharp.torch.Generator(unchecked((ulong)options.Seed));
        var generated = new List<GeneratedToken>();
        var ids = new List<int>();
        string reason = "max_new_tokens";
        Tensor input = tensor(promptIds.Select(i => (long)i).ToArray(), ScalarType.Int64).unsqueeze(0);
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            int next;
            double logProb;
            using (var scope = NewDisposeScope())
            {
                var logits = model.Step(input, cache)[0].to(ScalarType.Float64);
                var logProbs = logits.log_softmax(-1);
                next = Pick(logits, options, rng);
                logProb = logProbs[next].item<double>();
            }
            input.Dispose();
            ids.Add(next);
            var token = new GeneratedToken(next, tokenizer.Decode([next]), logProb);
            generated.Add(token);
            onToken?.Invoke(token);
            if (stops.Contains(next)) { reason = "stop_token"; break; }
            input = tensor(new long[] { next }, ScalarType.Int64).unsqueeze(0);
        }
        input.Dispose();
        return new Generation(promptIds, generated, tokenizer.Decode(ids.Where(i => !stops.Contains(i))), reason);
    }

    private static int Pick(Tensor logits, SamplingOptions o, TorchSharp.torch.Generator rng)
    {
        if (o.Temperature == 0) return (int)logits.argmax().item<long>();
        var scaled = logits / o.Temperature;
        if (o.TopK > 0 && o.TopK < scaled.shape[0])
        {
            var kth = scaled.topk(o.TopK).values[-1];
            scaled = scaled.masked_fill(scaled < kth, double.NegativeInfinity);
        }
        if (o.TopP < 1)
        {
            var (sorted, order) = scaled.sort(descending: true);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            // Keep the smallest prefix whose probability reaches p: drop a token once the mass before it already does.
            var drop = (cumulative - sorted.softmax(-1)) >= o.TopP;
            scaled = scaled.scatter(0, order, sorted.masked_fill(drop, double.NegativeInfinity));
        }
        return (int)multinomial(scaled.softmax(-1), 1, generator: rng).item<long>();
    }
}
