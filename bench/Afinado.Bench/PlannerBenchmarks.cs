using Afinado.Planner.Allocator;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using BenchmarkDotNet.Attributes;

namespace Afinado.Bench;

/// <summary>
/// Planner speed. <c>OnePlan</c>: the default plan end to end (selection, ledger with formulas, the caching-allocator
/// replay of the step, verdicts for the six common GPUs). <c>FitSearch100k</c>: 100,000 configurations (100 batch sizes ×
/// 1,000 sequence lengths) of the default job, each asked "does it fit an 80 GB card?" by the verdict's own rule
/// (<see cref="FitCheck.Fits"/>: tensor bound first, replay only where it decides). Replays are cached by trace, so the
/// benchmark clears nothing between configurations but each iteration starts from a fresh profile.
/// Run: <c>dotnet run -c Release --project bench/Afinado.Bench -- --filter '*' --job short</c>.
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

    /// <summary>One configuration on one GPU it fits (an H100): selection, ledger, one replay, one verdict; no fixes.</summary>
    [Benchmark]
    public long OnePlanOneGpu() => Planner.Fit.Planner.Create(_arch, _job, [_h100]).Ledger.TotalBytes;

    [Benchmark]
    public long OnePlanReplayUncached() =>
        Planner.Fit.Planner.Create(_arch, _job with { Seq = 2048 + (_fresh++ % 64) }, _gpus).Ledger.TotalBytes;
    private int _fresh;

    [Benchmark]
    public int FitSearch100k()
    {
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(_arch, _job));
        int fitting = 0;
        for (int b = 1; b <= 100; b++)
            for (int s = 1; s <= 1000; s++)
                if (FitCheck.Fits(profile, _job with { Batch = b, Seq = 64 * s }, _h100, DeviceKind.Gpu)) fitting++;
        return fitting;
    }

    /// <summary>The step's events in fresh lists (a plan records them in reused scratch buffers, a little faster).</summary>
    [Benchmark]
    public int TraceOnly() => StepTraces.For(_profile, _job).Events.Count;

    /// <summary>The step's events as a plan records them (this thread's reused scratch buffers).</summary>
    [Benchmark]
    public int TraceInPlan() => StepTraces.ForReplay(_profile, _job).Events.Count;

    [Benchmark]
    public long ReplayOnly() => AllocatorReplay.Run(_trace ??= StepTraces.For(_profile, _job), _job.AllocConf).PeakReservedBytes;
    private AllocationTrace? _trace;

    [Benchmark]
    public long LedgerOnly() => LedgerBuilder.Build(_profile, _job, DeviceKind.Gpu, explain: true, replay: false).TotalBytes;

    [Benchmark]
    public int MaxBatchSearch() => FitSearch.Largest(_profile, _job, _h100, DeviceKind.Gpu, "batch");
}
