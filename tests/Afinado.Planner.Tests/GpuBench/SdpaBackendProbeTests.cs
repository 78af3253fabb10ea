using System.Text.Json;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Tests.GpuBench;

/// <summary>
/// Holds the planner's SDPA kernel rule (<see cref="ActivationModel.SdpaFallsBackToMath"/>) to the H100 backend probe
/// (bench/gpu/probe_sdpa_backend.py → bench/gpu/runs/2026-11-26-h100/sdpa-backend-probe.json): a job "falls back to math"
/// when its default-dispatch peak equals its math-only peak and the fused kernels refuse it.
/// </summary>
public class SdpaBackendProbeTests
{
    private sealed record ProbeRow(string Config, string Dtype, string Setting, string Status, long? PeakAllocatedBytes);

    private static List<ProbeRow> Rows()
    {
        var path = Path.Combine(GpuScript.RepoRoot, "bench", "gpu", "runs", "2026-11-26-h100", "sdpa-backend-probe.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("rows").EnumerateArray().Select(r => new ProbeRow(
            r.GetProperty("config").GetString()!, r.GetProperty("dtype").GetString()!, r.GetProperty("setting").GetString()!,
            r.GetProperty("status").GetString()!,
            r.TryGetProperty("peak_allocated_bytes", out var p) ? p.GetInt64() : null)).ToList();
    }

    [Fact]
    public void The_planner_predicts_the_math_fallback_exactly_where_the_gpu_ran_it()
    {
        var jobs = Rows().GroupBy(r => (r.Config, r.Dtype)).ToList();
        Assert.True(jobs.Count >= 3, "the probe covers fp32 GQA models and a bf16 contrast");
        foreach (var job in jobs)
        {
            var bySetting = job.ToDictionary(r => r.Setting);
            long defaultPeak = bySetting["default"].PeakAllocatedBytes!.Value;
            bool measuredMath = bySetting["math-only"].PeakAllocatedBytes is { } math && Math.Abs(defaultPeak - math) <= 0.001 * math
                                && bySetting["efficient-only"].Status == "error" && bySetting["flash-only"].Status == "error";
            var id = job.Key.Config.Replace(".json", "").Replace("--", "/");
            double computeBytes = job.Key.Dtype == "float32" ? 4 : 2;
            Assert.Equal(measuredMath, ActivationModel.SdpaFallsBackToMath(ModelCatalog.Get(id), computeBytes));
        }
        Assert.Contains(jobs, j => j.Key.Dtype == "float32");
        Assert.Contains(jobs, j => j.Key.Dtype == "bfloat16");
    }
}
