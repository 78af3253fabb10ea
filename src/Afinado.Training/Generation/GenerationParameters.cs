namespace Afinado.Training.Generation;

/// <summary>
/// The parameters of <see cref="SamplingOptions"/>, named as the snake_case of its properties.
/// </summary>
public static class GenerationParameters
{
    public static readonly InputParameter MaxNewTokens = new("max_new_tokens");
    public static readonly InputParameter Temperature = new("temperature");
    public static readonly InputParameter TopK = new("top_k");
    public static readonly InputParameter TopP = new("top_p");
}
