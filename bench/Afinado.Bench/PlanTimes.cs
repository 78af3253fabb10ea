using System.Diagnostics;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Afinado.Bench -- plans</c>: one plan (selection, profile, ledger, the replay of the
/// job's allocator calls, one H100 verdict, no fixes) for jobs people plan, each from a fresh profile so that no replay is
/// cached. The figure is the fastest of 30 batches of 20 plans (the machine is shared: the fastest batch is the one least
/// disturbed), beside the median. The replay's cost follows the number of allocator calls the job makes, which the
/// last column counts.
/// </summary>
internal static class PlanTimes
{
    public static void Run()
    {
        var h100 = GpuCatalog.Get("h100");
        (string Name, string Model, Job Job)[] jobs =
        [
            ("LoRA 1 × 2,048 (the default)", "meta-llama/Llama-3.1-8B", new Job()),
            ("QLoRA 1 × 2,048", "meta-llama/Llama-3.1-8B", new Job { Method = TrainingMethod.QLora }),
            ("prefill 2,048", "meta-llama/Llama-3.1-8B", new Job { Task = JobTask.Infer }),
            ("prefill 2,048, decode to 8,192", "meta-llama/Llama-3.1-8B", new Job { Task = JobTask.Infer, Context = 8192 }),
            ("LoRA 1 × 2,048", "meta-llama/Llama-3.2-1B", new Job()),
            ("LoRA 1 × 2,048", "Qwen/Qwen3-30B-A3B", new Job()),
            ("QLoRA 1 × 2,048", "meta-llama/Llama-3.1-70B", new Job { Method = TrainingMethod.QLora }),
        ];
        Console.WriteLine($"{"model",-26} {"job",-32} {"fastest",10} {"median",10} {"calls",8}");
        foreach (var (name, model, job) in jobs)
        {
            var arch = ModelCatalog.Get(model);
            void Plan() => Afinado.Planner.Fit.Planner.Create(arch, job, [h100], suggestFixes: false);
            for (int i = 0; i < 40; i++) Plan();
            var perPlan = new List<double>();
            for (int batch = 0; batch < 30; batch++)
            {
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < 20; i++) Plan();
                perPlan.Add(sw.Elapsed.TotalMilliseconds / 20);
            }
            perPlan.Sort();
            var profile = ModelProfile.Create(Afinado.Planner.Fit.Planner.SelectionFor(arch, Afinado.Planner.Fit.Planner.ForCheckpoint(arch, job)));
            int calls = Afinado.Planner.Allocator.StepTraces.For(profile, Afinado.Planner.Fit.Planner.ForCheckpoint(arch, job)).Events.Count;
            Console.WriteLine($"{model,-26} {name,-32} {perPlan[0],8:F2} ms {perPlan[perPlan.Count / 2],7:F2} ms {calls,8:N0}");
        }
    }
}
