namespace Afinado.Evaluation.Metrics;

/// <summary>One equal-width confidence bin (Lower, Upper]: how many predictions fell in it, their mean confidence and accuracy.</summary>
public sealed record ReliabilityBin(double Lower, double Upper, int Count, double MeanConfidence, double Accuracy)
{
    /// <summary>|accuracy − confidence|: the bin's calibration gap (0 for an empty bin, which ECE skips).</summary>
    public double Gap => Count == 0 ? 0 : Math.Abs(Accuracy - MeanConfidence);
}
