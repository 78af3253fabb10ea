using System.CommandLine;
using Afinado.Training.Generation;

namespace Afinado.Cli.Commands;

/// <summary>The sampling flags <c>generate</c> and <c>chat</c> share, read into <see cref="SamplingOptions"/>.</summary>
public sealed class SamplingFlags(int defaultMaxNewTokens)
{
    public readonly Option<int> MaxNewTokens = new("--max-new-tokens") { Description = "Tokens to generate at most (per reply).", DefaultValueFactory = _ => defaultMaxNewTokens };
    public readonly Option<double> Temperature = new("--temperature") { Description = "0 = greedy (default); above 0 samples from logits / temperature.", DefaultValueFactory = _ => 0 };
    public readonly Option<int> TopK = new("--top-k") { Description = "Sample among the k most likely tokens (0 = all).", DefaultValueFactory = _ => 0 };
    public readonly Option<double> TopP = new("--top-p") { Description = "Sample among the smallest set of tokens whose probability reaches p (1 = all).", DefaultValueFactory = _ => 1.0 };
    public readonly Option<long> Seed = new("--seed") { Description = "Seed of the sampler.", DefaultValueFactory = _ => 1 };

    public IEnumerable<Option> All => [MaxNewTokens, Temperature, TopK, TopP, Seed];

    /// <summary>The options the flags give, checked (a bad value is an input error naming its flag).</summary>
    public SamplingOptions Read(ParseResult p, IReadOnlyCollection<int>? stopIds = null)
    {
        var o = new SamplingOptions
        {
            MaxNewTokens = p.GetValue(MaxNewTokens), Temperature = p.GetValue(Temperature), TopK = p.GetValue(TopK),
            TopP = p.GetValue(TopP), Seed = p.GetValue(Seed), StopIds = stopIds ?? [],
        };
        o.Validate();
        return o;
    }
}
