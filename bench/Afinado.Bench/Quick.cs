using System.Diagnostics;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Bench;

/// <summary><c>dotnet run -c Release --project bench/Afinado.Bench -- quick</c>: a stopwatch breakdown of one plan's parts (for profiling, not the reported numbers).</summary>
internal static class Quick
{
    public static void Run()
    {
        var arch = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        var job = new Job();
        Time("ParameterCount", () => arch.ParameterCount);
        Time("tensor.Module x291", () => arch.Tensors.Select(t => t.Module).ToList());
        Time("tensor.Elements x291", () => arch.Tensors.Select(t => t.Elements).ToList());
        Time("full selection", () => TrainableSelection.Full(arch));
        Time("lora q_proj selection", () => TrainableSelection.Create(arch, TrainingMethod.Lora, lora: new LoraConfig { Targets = ["q_proj"] }));
        Time("selection", () => Planner.Fit.Planner.SelectionFor(arch, job));
        var sel = Planner.Fit.Planner.SelectionFor(arch, job);
        Time("profile", () => ModelProfile.Create(sel));
        var profile = ModelProfile.Create(sel);
        Time("ledger (explained)", () => LedgerBuilder.Build(profile, job, DeviceKind.Gpu));
        Time("ledger (bytes only)", () => LedgerBuilder.Build(profile, job, DeviceKind.Gpu, explain: false));
        Time("plan, h100 only", () => Planner.Fit.Planner.Create(arch, job, [GpuCatalog.Get("h100")]));
        Time("plan, common GPUs (with fixes)", () => Planner.Fit.Planner.Create(arch, job, GpuCatalog.Common));
    }

    private static void Time(string what, Func<object> f)
    {
        for (int i = 0; i < 200; i++) f();
        var sw = Stopwatch.StartNew();
        int n = 2000;
        for (int i = 0; i < n; i++) f();
        Console.WriteLine($"{what,-34} {sw.Elapsed.TotalMicroseconds / n,10:F1} µs");
    }
}
