using System.Text.Json;
using System.Text.Json.Nodes;

namespace Afinado.Planner.Parallel;

/// <summary>The multi-GPU parts of the <c>afinado.plan/1</c> contract, written by <see cref="Fit.PlanJson"/> in its own
/// writer: the per-GPU verdict rows in place of the single-GPU ones, then the first device's layout ledger.</summary>
internal static class MultiGpuJson
{
    public static void WriteVerdicts(Utf8JsonWriter w, MultiGpuPlan multi, Func<InputParameter, string> parameterName)
    {
        w.WriteStartArray("gpus");
        foreach (var x in multi.Verdicts)
        {
            w.WriteStartObject();
            w.WriteString("gpu", x.Device.Id);
            w.WriteString("name", x.Device.Name);
            w.WriteNumber("capacity_bytes", x.Device.CapacityBytes);
            w.WriteBoolean("fits", x.Fits);
            w.WriteBoolean("fits_gpu_memory", x.FitsGpuMemory);
            w.WriteBoolean("fits_cpu_memory", x.FitsCpuMemory);
            if (x.CpuLimitBytesPerNode is { } limit) w.WriteNumber("cpu_limit_bytes_per_node", limit);
            else w.WriteNull("cpu_limit_bytes_per_node");
            w.WriteNumber("headroom_bytes", x.Device.CapacityBytes - x.Ledger.GpuPeakBytes);
            w.WriteNumber("per_gpu_bytes", x.Ledger.GpuPeakBytes);
            w.WriteNumber("cpu_bytes_per_node", x.Ledger.CpuBytesPerNode);
            w.WriteString("layout", x.Ledger.Layout.Describe());
            if (x.Ledger.GpuNvidiaSmiUpperBytes is { } upper) w.WriteNumber("nvidia_smi_upper_bytes", upper);
            else w.WriteNull("nvidia_smi_upper_bytes");
            w.WriteNumber("gpus_requested", x.RequestedGpus);
            w.WriteNumber("gpus_used", x.Ledger.Layout.Gpus);
            if (x.Unsupported is { } why) w.WriteString("unsupported", why.Render(parameterName));
            if (x.Dequantized is { } d) Fit.PlanJson.WriteDequantized(w, d, x.Ledger.GpuPeakBytes);
            if (x.SdpaMath is { } math) w.WriteString("sdpa_math_kernel", math);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static void WriteLayout(Utf8JsonWriter w, MultiGpuPlan multi)
    {
        var first = multi.Verdicts[0];
        foreach (var (key, value) in ParallelJson.Ledger(first.Ledger))
        {
            w.WritePropertyName(key);
            if (value is null) w.WriteNullValue();
            else value.WriteTo(w);
        }
        if (first.Alternatives.Count > 0)
        {
            w.WriteStartArray("alternatives");
            foreach (var a in first.Alternatives)
            {
                w.WriteStartObject();
                w.WritePropertyName("layout");
                ParallelJson.Layout(a.Layout).WriteTo(w);
                w.WriteNumber("gpu_peak_bytes", a.Ledger.GpuPeakBytes);
                w.WriteNumber("cpu_bytes_per_node", a.Ledger.CpuBytesPerNode);
                w.WriteBoolean("fits", a.Fits);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (multi.Fewest is { } fewest)
        {
            w.WriteStartObject("gpu_search");
            w.WriteString("parameter", "gpus");
            w.WriteNumber("value", fewest.Gpus);
            w.WritePropertyName("layout");
            ParallelJson.Layout(fewest.Chosen!.Layout).WriteTo(w);
            w.WriteEndObject();
        }
        else if (multi.FewestNotFound is { } none)
        {
            // No count runs the job: value null, and the floor more GPUs do not lower.
            var lowest = none.Ranked[0];
            w.WriteStartObject("gpu_search");
            w.WriteString("parameter", "gpus");
            w.WriteNull("value");
            w.WriteNumber("searched_up_to", none.Gpus);
            w.WriteNumber("lowest_gpu_peak_bytes", lowest.Ledger.GpuPeakBytes);
            w.WritePropertyName("lowest_layout");
            ParallelJson.Layout(lowest.Layout).WriteTo(w);
            w.WriteEndObject();
        }
    }
}
