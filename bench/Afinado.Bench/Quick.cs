using System.Diagnostics;

namespace Afinado.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Afinado.Bench -- quick</c>: the same operations as <see cref="PlannerBenchmarks"/>,
/// timed by wall clock AND by process CPU time. On a shared, oversubscribed machine the CPU time is the figure that
/// does not depend on how many other processes compete for the cores.
/// </summary>
internal static class Quick
{
    public static void Run()
    {
        var b = new PlannerBenchmarks();
        b.Setup();
        Time("OnePlan", 2_000, () => b.OnePlan());
        Time("OnePlanUncached", 200, () => b.OnePlanReplayUncached());
        Time("OnePlanOneGpu", 1_000, () => b.OnePlanOneGpu());
        Time("MaxBatchSearch", 2_000, () => b.MaxBatchSearch());
        Time("FitSearch100k", 3, () => b.FitSearch100k());
        // The parts of one uncached plan: the step's events, their replay, the ledger's formulas alone.
        Time("  TraceOnly", 1_000, () => b.TraceOnly());
        Time("  TraceInPlan", 1_000, () => b.TraceInPlan());
        Time("  ReplayOnly", 1_000, () => b.ReplayOnly());
        Time("  LedgerOnly", 1_000, () => b.LedgerOnly());
    }

    /// <summary><c>-- profile plan|trace|replay</c>: runs one part in a loop for a sampling profiler, e.g.
    /// <c>DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 perf record -F 2000 dotnet Afinado.Bench.dll profile replay</c>
    /// (without W^X off, perf sees JIT code as one anonymous mapping).</summary>
    public static void Profile(string part)
    {
        var b = new PlannerBenchmarks();
        b.Setup();
        Func<object> f = part switch
        {
            "plan" => () => b.OnePlanOneGpu(),
            "trace" => () => b.TraceInPlan(),
            "replay" => () => b.ReplayOnly(),
            _ => throw new ArgumentException($"profile: unknown part '{part}' (plan, trace or replay)"),
        };
        for (int i = 0; i < 3000; i++) f();
    }

    private static void Time(string what, int n, Func<object> f)
    {
        for (int i = 0; i < Math.Max(1, n / 10); i++) f();
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) f();
        sw.Stop();
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        Console.WriteLine($"{what,-16} wall {sw.Elapsed.TotalMicroseconds / n,12:F1} µs/op   cpu {cpu.TotalMicroseconds / n,12:F1} µs/op   ({n} ops)");
    }
}
