using Afinado.Planner.Catalog;

namespace Afinado.Planner.Tests;

/// <summary>The catalog configs the GPU grid (bench/gpu/grid.py) builds, checked against published parameter counts.</summary>
public class GpuGridCatalogTests
{
    [Theory]
    [InlineData("HuggingFaceTB/SmolLM2-135M", 134_515_008L)]
    [InlineData("TinyLlama/TinyLlama-1.1B-Chat-v1.0", 1_100_048_384L)]
    [InlineData("meta-llama/Llama-3.2-1B", 1_235_814_400L)]
    [InlineData("meta-llama/Llama-3.2-3B", 3_212_749_824L)]
    [InlineData("meta-llama/Llama-2-7b-hf", 6_738_415_616L)]
    [InlineData("Qwen/Qwen2.5-0.5B", 494_032_768L)]
    public void Grid_models_have_published_parameter_counts(string id, long expected)
    {
        Assert.Equal(expected, ModelCatalog.Get(id).ParameterCount);
    }
}
