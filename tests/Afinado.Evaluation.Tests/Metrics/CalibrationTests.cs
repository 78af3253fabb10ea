using Afinado.Evaluation.Metrics;

namespace Afinado.Evaluation.Tests.Metrics;

public class CalibrationTests
{
    // Five predictions worked by hand with 5 bins of width 0.2:
    //   0.3 ✗ → (0.2,0.4] gap 0.3 · 0.55 ✓ → (0.4,0.6] gap 0.45 · 0.7 ✓ → (0.6,0.8] gap 0.3 · 0.9 ✓, 0.9 ✗ → (0.8,1] acc 0.5 gap 0.4
    //   ECE = (0.3 + 0.45 + 0.3 + 2·0.4)/5 = 0.37; MCE = 0.45
    //   Brier (binary) = (0.01 + 0.81 + 0.09 + 0.09 + 0.2025)/5 = 0.2405
    //   AUROC: pos {0.9, 0.7, 0.55} vs neg {0.9, 0.3}: 0.5 + 1 + 0 + 1 + 0 + 1 = 3.5 of 6 pairs
    private static readonly Prediction[] HandExample =
    [
        new(0.9, true), new(0.9, false), new(0.7, true), new(0.3, false), new(0.55, true),
    ];

    [Fact]
    public void Hand_computed_example_matches_exactly()
    {
        Assert.Equal(0.37, Calibration.ExpectedCalibrationError(HandExample, bins: 5), 12);
        Assert.Equal(0.45, Calibration.MaximumCalibrationError(HandExample, bins: 5), 12);
        Assert.Equal(0.2405, Calibration.Brier(HandExample, out var kind), 12);
        Assert.Equal(BrierKind.BinaryOnConfidence, kind);
        Assert.Equal(3.5 / 6, Calibration.Auroc(HandExample)!.Value, 12);
        Assert.Equal(2.0 / 3, Calibration.SelectiveAccuracy(HandExample, 0.5), 12);
        Assert.Equal(3.0 / 4, Calibration.SelectiveAccuracy(HandExample, 0.8), 12);
        Assert.Equal(3.0 / 5, Calibration.SelectiveAccuracy(HandExample, 1.0), 12);
        // k = 1 falls inside the tied 0.9 group (one right, one wrong): it counts half, whatever the input order.
        Assert.Equal(0.5, Calibration.SelectiveAccuracy(HandExample, 0.2), 12);
        Assert.Equal(0.5, Calibration.SelectiveAccuracy(HandExample.Reverse().ToArray(), 0.2), 12);
    }

    [Fact]
    public void Reliability_bins_are_half_open_on_the_left()
    {
        var bins = Calibration.Reliability([new Prediction(0.2, true), new Prediction(0.0, false), new Prediction(1.0, true)], bins: 5);
        Assert.Equal(2, bins[0].Count); // 0.0 and 0.2 both fall in (0, 0.2] (0 is put in the first bin)
        Assert.Equal(1, bins[4].Count);
        Assert.Equal(0.5, bins[0].Accuracy, 12);
        Assert.Equal(0.1, bins[0].MeanConfidence, 12);
    }

    [Fact]
    public void Multiclass_brier_uses_the_full_distribution()
    {
        Prediction[] preds =
        [
            new(0.7, true, 0, [0.7, 0.2, 0.1]),  // 0.09 + 0.04 + 0.01 = 0.14
            new(0.5, false, 1, [0.5, 0.4, 0.1]), // 0.25 + 0.36 + 0.01 = 0.62
        ];
        Assert.Equal(0.38, Calibration.Brier(preds, out var kind), 12);
        Assert.Equal(BrierKind.MultiClass, kind);
    }

    [Fact]
    public void Perfectly_calibrated_predictor_has_ece_near_zero_and_an_overconfident_one_does_not()
    {
        var rng = new Random(42);
        var calibrated = new Prediction[200_000];
        var overconfident = new Prediction[200_000];
        for (int i = 0; i < calibrated.Length; i++)
        {
            var c = 0.3 + 0.7 * rng.NextDouble();
            calibrated[i] = new Prediction(c, rng.NextDouble() < c);
            overconfident[i] = new Prediction(c, rng.NextDouble() < c - 0.2);
        }
        Assert.True(Calibration.ExpectedCalibrationError(calibrated) < 0.01, $"ECE {Calibration.ExpectedCalibrationError(calibrated)}");
        Assert.Equal(0.2, Calibration.ExpectedCalibrationError(overconfident), 2);
    }

    [Fact]
    public void Auroc_is_one_for_a_perfect_separator_zero_for_a_reversed_one_and_half_for_constant_confidence()
    {
        var perfect = Enumerable.Range(0, 50).Select(i => new Prediction(i / 100.0 + (i >= 25 ? 0.5 : 0), i >= 25)).ToArray();
        Assert.Equal(1.0, Calibration.Auroc(perfect));
        var reversed = perfect.Select(p => p with { Correct = !p.Correct }).ToArray();
        Assert.Equal(0.0, Calibration.Auroc(reversed));
        var constant = perfect.Select(p => p with { Confidence = 0.5 }).ToArray();
        Assert.Equal(0.5, Calibration.Auroc(constant));
        Assert.Null(Calibration.Auroc([new Prediction(0.9, true), new Prediction(0.4, true)]));
    }

    [Fact]
    public void Confidence_outside_unit_interval_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Calibration.ExpectedCalibrationError([new Prediction(1.2, true)]));
    }
}
