using System.Text.Json;
using Afinado.Evaluation;
using Afinado.Training.Loop;
using Afinado.Training.Runs;

namespace Afinado.Cli.Tests;

/// <summary>NaN and ±Infinity come out of every JSON writer as null (a diverged run still gets its summary.json).</summary>
public class FiniteJsonTests
{
    private static RunSummary Diverged() => new()
    {
        Status = "diverged", Method = "full", Rule = "backprop", TotalParameters = 10, TrainableParameters = 10,
        Steps = 3, MaxSteps = 10, WallSeconds = 1.5, ForwardPasses = 3, TrainPositions = 30,
        FinalTrainLoss = 2.5,
        FinalValidationLoss = double.NaN,
        PositionsPerSecond = double.PositiveInfinity,
        ExtraValidation = new Dictionary<string, RunSummary.LossBeforeAfter> { ["en"] = new(double.NegativeInfinity, double.NaN) },
        LossCurve = [new LossPoint(1, double.NaN, double.PositiveInfinity)],
        Manifest = new RunManifest { ConfigSha256 = "c", DataFiles = [], DataSha256 = "d", CodeVersion = "v", Seed = 1, CreatedUtc = "now" },
    };

    [Fact]
    public void Run_summary_with_nan_and_infinity_serializes_them_as_null_and_reads_back()
    {
        var json = JsonSerializer.Serialize(Diverged(), TrainConfig.Json);
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        Assert.Equal(JsonValueKind.Null, r.GetProperty("final_validation_loss").ValueKind);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("positions_per_second").ValueKind);
        Assert.Equal(2.5, r.GetProperty("final_train_loss").GetDouble());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("extra_validation").GetProperty("en").GetProperty("before").ValueKind);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("loss_curve")[0].GetProperty("train_loss").ValueKind);

        var back = JsonSerializer.Deserialize<RunSummary>(json, TrainConfig.Json)!;
        Assert.True(double.IsNaN(back.LossCurve![0].TrainLoss), "a non-nullable figure written as null reads back as NaN");
        Assert.Null(back.FinalValidationLoss);
    }

    [Fact]
    public void Eval_json_writes_nan_as_null_and_still_reads_the_old_nan_strings()
    {
        var json = EvalJson.Serialize(new { ece = double.NaN, brier = 0.25, auroc = (double?)double.NegativeInfinity });
        Assert.Contains("\"ece\": null", json);
        Assert.Contains("\"auroc\": null", json);
        Assert.Contains("\"brier\": 0.25", json);
        Assert.True(double.IsPositiveInfinity(JsonSerializer.Deserialize<double>("\"Infinity\"", EvalJson.Options)));
    }
}
