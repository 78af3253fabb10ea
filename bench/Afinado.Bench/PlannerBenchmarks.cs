using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using BenchmarkDotNet.Attributes;

namespace Afinado.Bench;

/// <summary>
/// Planner speed. <c>OnePlan</c>: the default plan end to end (selection, ledger with formulas, verdicts for the six common
/// GPUs). <c>FitSearch100k</c>: 100,000 configurations (100 batch sizes × 1,000 sequence lengths) of the default job, each a
/// full ledger evaluated against an 80 GB card. Run: <c>dotnet run -c Release --project bench/Afinado.Bench -- --filter '*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
public class PlannerBenchmarks
{
    private ModelArchitecture _arch = null!;
    private ModelProfile _profile = null!;
    private readonly Job _job = new();
    private IReadOnlyList<Device> _gpus = null!;
    private Device _h100 = null!;

    [GlobalSetup]
    public void Setup()
    {
        _arch = ModelCatalog.Get("meta-llama/Llama-3.1-8B");
        _profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(_arch, _job));
        _gpus = GpuCatalog.Common;
        _h100 = GpuCatalog.Get("h100");
    }

    [Benchmark]
    public long OnePlan() => Planner.Fit.Planner.Create(_arch, _job, _gpus).Ledger.TotalBytes;

    [Benchmark]
    public int FitSearch100k()
    {
        int fitting = 0;
        for (int b = 1; b <= 100; b++)
            for (int s = 1; s <= 1000; s++)
                if (FitSearch.Total(_profile, _job with { Batch = b, Seq = 64 * s }, DeviceKind.Gpu) <= _h100.CapacityBytes) fitting++;
        return fitting;
    }

    [Benchmark]
    public int MaxBatchSearch() => FitSearch.Largest(_profile, _job, _h100, DeviceKind.Gpu, "batch");
}
