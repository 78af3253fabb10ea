using System.Text.Json;

namespace Afinado.Cli.Tests;

public sealed class CalibrationCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-cal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task Csv_with_header_gives_the_hand_computed_metrics_as_json()
    {
        // Same five predictions as the metric unit test: ECE (5 bins) 0.37, Brier 0.2405, AUROC 3.5/6.
        var csv = Write("p.csv", "confidence,correct\n0.9,1\n0.9,0\n0.7,true\n0.3,false\n0.55,1\n");
        var (code, stdout, stderr) = await Run("calibration", csv, "--bins", "5", "--json");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        Assert.Equal("afinado.calibration/1", r.GetProperty("schema").GetString());
        Assert.Equal(5, r.GetProperty("n").GetInt32());
        Assert.Equal(0.37, r.GetProperty("ece").GetDouble(), 9);
        Assert.Equal(0.2405, r.GetProperty("brier").GetDouble(), 9);
        Assert.Equal(3.5 / 6, r.GetProperty("auroc").GetDouble(), 9);
        Assert.Equal(3, r.GetProperty("selective").GetArrayLength());
        Assert.Equal(2.0 / 3, r.GetProperty("selective")[0].GetProperty("accuracy").GetDouble(), 9);
    }

    [Fact]
    public async Task Jsonl_with_probabilities_uses_multiclass_brier_and_writes_a_png_plot()
    {
        var jsonl = Write("p.jsonl",
            "{\"correct\": true, \"label\": 0, \"probabilities\": [0.7, 0.2, 0.1]}\n" +
            "{\"confidence\": 0.5, \"correct\": false, \"label\": 1, \"probabilities\": [0.5, 0.4, 0.1]}\n");
        var png = Path.Combine(_dir, "rel.png");
        var (code, stdout, _) = await Run("calibration", jsonl, "--plot", png);
        Assert.Equal(0, code);
        Assert.Contains("Brier 0.3800", stdout);
        Assert.Contains("multi-class", stdout);
        var bytes = File.ReadAllBytes(png);
        Assert.True(bytes.Length > 5000, $"PNG only {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
    }

    [Theory]
    [InlineData("confidence,correct\n0.9,1\n1.7,0\n", ":3: confidence", "outside [0, 1]")]
    [InlineData("confidence,correct\n0.9,1\n0.4,maybe\n", ":3: correct", "1/0 or true/false")]
    [InlineData("confidence,correct\n0.9,1\nabc,0\n", ":3: confidence", "not a number")]
    [InlineData("0.9,1\n0.8\n", ":2", "1 column(s), expected 2")]
    public async Task Bad_rows_are_bad_input_naming_line_and_column(string text, string where, string what)
    {
        var csv = Write("bad.csv", text);
        var (code, _, stderr) = await Run("calibration", csv);
        Assert.Equal(2, code);
        Assert.Contains(where, stderr);
        Assert.Contains(what, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public async Task Broken_jsonl_and_missing_file_and_bad_bins_are_bad_input()
    {
        var jsonl = Write("bad.jsonl", "{\"confidence\": 0.9, \"correct\": true}\n{not json\n");
        var r1 = await Run("calibration", jsonl);
        Assert.Equal(2, r1.Code);
        Assert.Contains(":2", r1.Err);
        var r2 = await Run("calibration", Path.Combine(_dir, "nope.csv"));
        Assert.Equal(2, r2.Code);
        Assert.Contains("does not exist", r2.Err);
        var ok = Write("ok.csv", "0.9,1\n");
        var r3 = await Run("calibration", ok, "--bins", "0");
        Assert.Equal(2, r3.Code);
        Assert.Contains("--bins", r3.Err);
    }
}
