namespace Afinado.Planner.Architecture;

/// <summary>
/// Granite's four scalars (transformers models/granite/configuration_granite.py, each defaulting to 1.0): inputs
/// embeddings × embedding_multiplier, each block output × residual_multiplier before the residual add, attention
/// scores × attention_multiplier (instead of 1/√head_dim), logits ÷ logits_scaling. They change no tensor, but a zero,
/// negative or non-finite value makes a model that cannot train, so it is bad input named by key.
/// </summary>
internal sealed record GraniteScaling(double Embedding, double Residual, double Attention, double Logits)
{
    public static GraniteScaling Read(ConfigFields c) => new(
        c.PositiveNumber("embedding_multiplier", 1.0),
        c.PositiveNumber("residual_multiplier", 1.0),
        c.PositiveNumber("attention_multiplier", 1.0),
        c.PositiveNumber("logits_scaling", 1.0));
}
