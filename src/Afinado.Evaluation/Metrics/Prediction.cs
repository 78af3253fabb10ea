namespace Afinado.Evaluation.Metrics;

/// <summary>
/// One scored prediction: the model's confidence in its answer (top-class probability) and whether the answer was right.
/// <paramref name="Label"/> (the true class) and <paramref name="Probabilities"/> (the full distribution) are optional;
/// when every prediction carries both, the Brier score is the multi-class one, otherwise it is binary on confidence.
/// </summary>
public sealed record Prediction(double Confidence, bool Correct, int? Label = null, IReadOnlyList<double>? Probabilities = null)
{
    public bool HasDistribution => Label is not null && Probabilities is not null;
}
