using Afinado.Planner.Catalog;

namespace Afinado.Planner.Tests;

public class ParameterCountTests
{
    [Theory]
    [InlineData("meta-llama/Llama-3.1-8B", 8_030_261_248L)]
    [InlineData("meta-llama/Llama-2-7b-hf", 6_738_415_616L)]
    [InlineData("meta-llama/Llama-2-70b-hf", 68_976_648_192L)]
    [InlineData("meta-llama/Llama-3.2-3B", 3_212_749_824L)]
    public void Catalog_models_have_published_parameter_counts(string id, long expected)
    {
        Assert.Equal(expected, ModelCatalog.Get(id).ParameterCount);
    }

    [Fact]
    public void Llama31_8B_kv_bytes_per_token_in_bf16_is_128KiB()
    {
        Assert.Equal(131_072L, ModelCatalog.Get("meta-llama/Llama-3.1-8B").KvBytesPerToken(2));
    }
}
