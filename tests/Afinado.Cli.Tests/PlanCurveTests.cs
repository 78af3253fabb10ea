using System.Text.Json;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;

namespace Afinado.Cli.Tests;

public sealed class PlanCurveTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-curve-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliRun.Run(args);

    [Fact]
    public async Task Table_lists_every_point_and_the_largest_per_gpu()
    {
        var (code, output, err) = await Run("plan", "--curve", "seq", "--curve-points", "512,1024,4096,16384", "--gpu", "l4", "--gpu", "h100");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Equal("", err);
        var curve = output[output.IndexOf("Memory vs sequence length", StringComparison.Ordinal)..];
        foreach (var value in new[] { "512", "1,024", "4,096", "16,384" }) Assert.Contains($"│ {value,7} │", curve);
        foreach (var column in new[] { "allocated", "reserved", "total", "L4 24GB", "H100 SXM 80GB", "largest" }) Assert.Contains(column, curve);
        Assert.Contains("✓", curve);
        Assert.Contains("✗ OOM", curve);
    }

    [Fact]
    public async Task Json_points_rise_and_largest_is_the_search_and_agrees_with_the_fits()
    {
        var (code, output, err) = await Run("plan", "--json", "--curve", "seq", "--gpu", "l4", "--gpu", "a100-80gb", "--checkpointing", "full");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("Memory vs sequence length", err); // the tables go to stderr with --json
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        // The existing contract is untouched.
        Assert.Equal("afinado.plan/1", r.GetProperty("schema").GetString());
        Assert.Equal(2, r.GetProperty("gpus").GetArrayLength());
        Assert.True(r.TryGetProperty("peak_bytes", out _) && r.TryGetProperty("fits_any", out _));

        var curve = r.GetProperty("curve");
        Assert.Equal("seq", curve.GetProperty("parameter").GetString());
        var points = curve.GetProperty("points").EnumerateArray().ToList();
        Assert.True(points.Count >= 8);
        Assert.Equal(points.Select(p => p.GetProperty("value").GetInt32()).Order(), points.Select(p => p.GetProperty("value").GetInt32()));
        foreach (var p in points)
        {
            long allocated = p.GetProperty("allocated_bytes").GetInt64(), reserved = p.GetProperty("reserved_bytes").GetInt64(), total = p.GetProperty("total_bytes").GetInt64();
            Assert.True(allocated <= reserved && reserved <= total, $"{p.GetProperty("value")}: {allocated} ≤ {reserved} ≤ {total}");
        }

        var arch = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        var job = new Job { Checkpointing = Checkpointing.Full };
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(arch, job));
        foreach (var id in new[] { "l4", "a100-80gb" })
        {
            int largest = curve.GetProperty("largest").GetProperty(id).GetInt32();
            Assert.Equal(FitSearch.Largest(profile, job, GpuCatalog.Get(id), DeviceKind.Gpu, "seq"), largest);
            Assert.True(largest > 0);
            foreach (var p in points)
                Assert.Equal(p.GetProperty("value").GetInt32() <= largest, p.GetProperty("fits").GetProperty(id).GetBoolean());
        }
    }

    [Fact]
    public async Task Batch_curve_for_inference_runs_past_every_gpu()
    {
        var (code, output, err) = await Run("plan", "--json", "--task", "infer", "--seq", "1024", "--context", "4096", "--curve", "batch", "--gpu", "l4", "--gpu", "h100");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("prompt 1024, context 4096", err);
        using var doc = JsonDocument.Parse(output);
        var curve = doc.RootElement.GetProperty("curve");
        var last = curve.GetProperty("points").EnumerateArray().Last();
        Assert.False(last.GetProperty("fits").GetProperty("l4").GetBoolean());
        Assert.False(last.GetProperty("fits").GetProperty("h100").GetBoolean());
        Assert.True(last.GetProperty("value").GetInt32() > curve.GetProperty("largest").GetProperty("h100").GetInt32());
    }

    [Fact]
    public async Task Cpu_curve_has_no_allocator_figures()
    {
        var (code, output, _) = await Run("plan", "--json", "--device", "cpu", "--model", "meta-llama/Llama-3.2-1B", "--curve", "seq", "--curve-range", "128:1024");
        Assert.Equal(CliApp.ExitOk, code);
        using var doc = JsonDocument.Parse(output);
        var point = doc.RootElement.GetProperty("curve").GetProperty("points")[0];
        Assert.False(point.TryGetProperty("reserved_bytes", out _));
        Assert.True(point.GetProperty("fits").GetProperty("cpu").GetBoolean());
    }

    [Fact]
    public async Task Png_plot_is_a_real_png()
    {
        string path = Path.Combine(_dir, "figures", "curve.png");
        var (code, output, _) = await Run("plan", "--curve", "batch", "--seq", "512", "--gpu", "l4", "--gpu", "a100-40gb", "--plot", path);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains($"Wrote {path}", output);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.True(bytes.Length > 20_000, $"{bytes.Length} bytes");
    }

    [Fact]
    public async Task Svg_plot_names_the_gpus()
    {
        string path = Path.Combine(_dir, "curve.svg");
        var (code, _, _) = await Run("plan", "--task", "infer", "--curve", "seq", "--gpu", "rtx4090", "--plot", path, "--json");
        Assert.Equal(CliApp.ExitOk, code);
        var svg = File.ReadAllText(path);
        Assert.Contains("<svg", svg);
        Assert.Contains("RTX 4090", svg);
    }

    [Theory]
    [InlineData("--curve", "--curve", "rank")]
    [InlineData("--curve-points", "--curve", "seq", "--curve-points", "1024,512")]
    [InlineData("--curve-points", "--curve", "seq", "--curve-points", "0,512")]
    [InlineData("--curve-points", "--curve", "seq", "--curve-points", "512,abc")]
    [InlineData("--curve-points", "--curve", "seq", "--curve-points", "99999999999")]
    [InlineData("--curve-points", "--curve", "batch", "--curve-points", "2000000")]
    [InlineData("--curve-range", "--curve", "seq", "--curve-range", "4096")]
    [InlineData("--curve-range", "--curve", "seq", "--curve-range", "4096:512")]
    [InlineData("--curve-points/--curve-range", "--curve", "seq", "--curve-range", "256:512", "--curve-points", "256")]
    [InlineData("--plot", "--curve", "seq", "--plot", "curve.jpg")]
    [InlineData("--plot", "--plot", "curve.png")]
    [InlineData("--curve-points", "--curve-points", "512")]
    [InlineData("--curve", "--curve", "seq", "--gpus", "4")]
    public async Task Bad_curve_input_exits_2_naming_the_flag(string flag, params string[] args)
    {
        var (code, _, err) = await Run(["plan", .. args]);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains(flag, err);
        Assert.DoesNotContain("   at ", err);
    }
}
