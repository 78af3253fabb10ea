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
