using System.Text.Json;
using Afinado.Training.LearningRules.Bench;
using Afinado.Training.LearningRules.Memory;

namespace Afinado.Training.Tests.LearningRules;

/// <summary>
/// Holds <see cref="RuleMemory"/> to peaks measured in tamed child processes (VmHWM, MALLOC_MMAP_THRESHOLD_=131072),
/// committed in bench/learning-rules/rule-memory.json by
/// <c>afinado bench fashion-mnist --memory-only --runs mem-bp,mem-bp-sgd,mem-dfa,mem-es-batched,mem-es-lowrank,mem-es-inplace,mem-es-direct,mem-guided-es</c>.
/// A ledger change that drifts from the measurements fails here; re-measure and commit the file when the code changes.
/// </summary>
public class RuleMemoryMeasuredTests
{
    private static string MeasurementsPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "bench", "learning-rules", "rule-memory.json");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("bench/learning-rules/rule-memory.json not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void Predicted_peak_is_within_8_percent_of_the_measured_peak_for_every_probe()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(MeasurementsPath()));
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray()
            .Select(r => r.Deserialize<FashionMnistRunResult>()!)
            .Where(r => r.Spec.Id.StartsWith("mem-", StringComparison.Ordinal))
            .ToList();
        Assert.True(rows.Count >= 4, $"need at least 4 measured configurations, found {rows.Count}");
        var report = new List<string>();
        foreach (var r in rows)
        {
            Assert.True(r.MallocTamed, $"{r.Spec.Id} was not measured with the tamed allocator");
            double measured = r.PeakRssBytes - r.BaselineRssBytes;
            double predicted = RuleMemory.Peak(FashionMnistBench.MemoryJob(r.Spec));
            double error = (predicted - measured) / measured;
            report.Add($"{r.Spec.Id}: measured {measured / 1048576:F1} MiB, predicted {predicted / 1048576:F1} MiB ({error:+0.0%;-0.0%})");
            Assert.True(Math.Abs(error) <= 0.08, string.Join("; ", report));
        }
    }
}
