namespace Afinado.Cli.Tests;

/// <summary>
/// README: parameter counts "accept up to 10¹⁵ parameters and name anything beyond". A config just past the limit is
/// exit 2 naming the keys this config uses (GPT-2 spells them n_layer / n_embd) with their values; one just under plans.
/// </summary>
public sealed class HugeConfigPlanTests : IDisposable
{
    private readonly HostileFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static string Llama(int layers) =>
        $$"""{"model_type":"llama","vocab_size":32000,"hidden_size":400000,"num_hidden_layers":{{layers}},"num_attention_heads":1000,"num_key_value_heads":1000,"intermediate_size":400000,"max_position_embeddings":128}""";

    [Fact]
    public async Task Just_past_ten_to_the_fifteen_parameters_is_refused_naming_the_keys_and_values()
    {
        // 1,000 layers × 1.12e12 per layer ≈ 1.12e15 parameters.
        var config = _files.Text("huge.json", Llama(1000));
        HostileFiles.AssertBadInput(await CliRun.Run("plan", "--model", config), "huge.json", "1,120,026,400,400,000 parameters",
            "num_hidden_layers = 1,000", "hidden_size = 400,000", "intermediate_size = 400,000", "limit 1,000,000,000,000,000");
    }

    [Fact]
    public async Task Gpt2_spelled_keys_are_the_ones_named()
    {
        var config = _files.Text("gpt2-huge.json", """{"model_type":"gpt2","vocab_size":50257,"n_embd":1000000,"n_layer":1000,"n_head":1000,"n_positions":1024}""");
        var result = await CliRun.Run("plan", "--model", config);
        HostileFiles.AssertBadInput(result, "gpt2-huge.json", "n_layer = 1,000", "n_embd = 1,000,000");
        Assert.DoesNotContain("hidden_size", result.Err); // a key this config does not have
    }

    [Fact]
    public async Task Just_under_ten_to_the_fifteen_parameters_is_planned()
    {
        // 880 layers ≈ 9.86e14 parameters: within the promise, so a plan (that fits no GPU: exit 3), not bad input.
        var (code, _, err) = await CliRun.Run("plan", "--model", _files.Text("under.json", Llama(880)));
        Assert.Equal(3, code);
        Assert.DoesNotContain("error:", err);
    }
}
