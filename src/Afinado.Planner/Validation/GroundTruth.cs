using System.Globalization;
using Afinado.Planner.Catalog;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Validation;

/// <summary>
/// Predicts ground-truth rows; a row's <c>plan_args</c> are read by the <see cref="PlanArgsParser"/> the caller gives
/// (the CLI's: the flag parser of <c>afinado plan</c>). Files (in a <c>ground-truth</c> folder):
/// <list type="bullet">
/// <item><c>published.csv</c>: memory.md §4.1–4.4, one row per published number, with the assumptions it was mapped to.</item>
/// <item><c>gpu-*.csv</c> written by <c>bench/gpu/measure.py</c> (schema <c>afinado.gpu-ground-truth/1</c>, see <see cref="MeasuredGpuRows"/>).</item>
/// <item><c>gpu-*.csv</c> / <c>cpu-*.csv</c> in the simple form: columns <c>id,plan_args,metric,measured_bytes,tolerance,device,command,note</c>
/// (metric: allocated | reserved | active | nvidia-smi | rss-growth; tolerance optional: 0.10 gpu, 0.08 cpu).</item>
/// </list>
/// Metrics map to the ledger as: allocated/active → peak_bytes; reserved → peak + allocator reserve; nvidia-smi → total_bytes;
/// rss-growth → total_bytes on <c>--device cpu</c> (peak + measured CPU runtime); kv-bytes-per-token → the KV entry of a 1-token inference plan.
/// </summary>
public static class GroundTruth
{
    /// <summary>
    /// The folder given, else <c>bench/ground-truth</c> in the working directory or one above it, else the copy shipped
    /// next to the running program. Errors name <c>--dir</c>, the option of <c>afinado validate</c> that sets it.
    /// </summary>
    public static string FindDirectory(string? given)
    {
        if (given is not null)
            return Directory.Exists(given) ? given : throw new InputError(ValidationParameters.GroundTruthDir, $"\"{given}\" does not exist", $"Point {ValidationParameters.GroundTruthDir} at a folder holding published.csv.");
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "bench", "ground-truth");
            if (File.Exists(Path.Combine(candidate, "published.csv"))) return candidate;
        }
        var shipped = Path.Combine(AppContext.BaseDirectory, "ground-truth");
        return File.Exists(Path.Combine(shipped, "published.csv")) ? shipped
            : throw new InputError(ValidationParameters.GroundTruthDir, "no ground-truth folder found", $"Run from the repository or pass {ValidationParameters.GroundTruthDir} bench/ground-truth.");
    }

    /// <summary>Every ground-truth file of <paramref name="directory"/>, predicted: published.csv, then gpu-*.csv, then cpu-*.csv.</summary>
    public static IReadOnlyList<ValidationSource> Validate(string directory, PlanArgsParser parsePlanArgs)
    {
        var sources = new List<ValidationSource> { Source("published", Path.Combine(directory, "published.csv"), directory, 0, parsePlanArgs) };
        foreach (var file in Directory.GetFiles(directory, "gpu-*.csv").Order())
        {
            sources.Add(Source(Path.GetFileNameWithoutExtension(file), file, directory, 0.10, parsePlanArgs));
            sources.AddRange(MeasuredGpuRows.AllocatorSources(Path.GetFileNameWithoutExtension(file), file, Csv.Read(file)));
        }
        foreach (var file in Directory.GetFiles(directory, "cpu-*.csv").Order()) sources.Add(Source(Path.GetFileNameWithoutExtension(file), file, directory, 0.08, parsePlanArgs));
        return sources;
    }

    private static ValidationSource Source(string name, string file, string directory, double defaultTolerance, PlanArgsParser parsePlanArgs)
    {
        var rows = new List<ValidationRow>();
        var records = Csv.Read(file);
        if (MeasuredGpuRows.Matches(records))
        {
            foreach (var r in records) rows.Add(MeasuredGpuRows.Map(r, defaultTolerance));
            return new ValidationSource(name, file, rows);
        }
        string defaultScope = name.StartsWith("cpu-", StringComparison.Ordinal) ? "cpu" : name.StartsWith("gpu-", StringComparison.Ordinal) ? "gpu" : "single-gpu";
        foreach (var r in records)
        {
            string id = Get(r, "id");
            string scope = r.TryGetValue("scope", out var sc) && sc.Length > 0 ? sc : defaultScope;
            string metric = Get(r, "metric");
            double? measured = Number(r, "measured_bytes");
            double? tolerance = Number(r, "tolerance") ?? (defaultTolerance > 0 ? defaultTolerance : null);
            string args = r.TryGetValue("plan_args", out var a) ? a : "";
            double? predicted = args.Length > 0 && scope is not ("unsupported" or "reference")
                ? Predict(args, metric, directory, $"{Path.GetFileName(file)}:{id}", parsePlanArgs)
                : null;
            rows.Add(new ValidationRow(id, scope, metric, measured, predicted, tolerance, r.TryGetValue("note", out var n) ? n : ""));
        }
        return new ValidationSource(name, file, rows);
    }

    /// <summary>
    /// The planner's figure for one row: <paramref name="metric"/> of the job in <paramref name="planArgs"/>, a model
    /// path in them taken relative to <paramref name="directory"/> first; <paramref name="where"/> names the row in errors.
    /// </summary>
    public static double Predict(string planArgs, string metric, string directory, string where, PlanArgsParser parsePlanArgs)
    {
        var args = parsePlanArgs(planArgs, where);
        string model = args.Model;
        var local = Path.Combine(directory, model);
        var arch = File.Exists(local) || Directory.Exists(local) ? ModelSource.Resolve(local) : ModelSource.Resolve(model);
        var job = args.Job();
        var devices = args.OnCpu ? args.Devices() : [];
        if (metric == "max-seq")
        {
            // A published maximum trainable length on a card: the plan's own --max seq on the first device given.
            var cards = args.Devices();
            return Fit.Planner.Create(arch, job, cards, "seq", suggestFixes: false).Search!.Value;
        }
        var plan = Fit.Planner.Create(arch, job, devices, suggestFixes: false);
        if (args.MultiGpu)
            return PredictParallel(plan, args.Layout().Validate(arch), metric, where);
        var l = plan.Ledger;
        return metric switch
        {
            "allocated" or "active" => l.PeakBytes,
            // RSS growth includes the measured CPU training runtime entry (the CPU ledger's only runtime overhead).
            "rss-growth" => l.TotalBytes,
            "reserved" => l.PeakBytes + l.Runtime.Where(e => e.Kind.IsReservedInsideAllocator()).Sum(e => e.Bytes),
            "nvidia-smi" or ValidationRow.FitsWithin => l.TotalBytes,
            "kv-bytes-per-token" => l.Tensors.Single(e => e.Kind == LineKind.KvCachePrompt).Bytes / (job.Batch * (double)job.Seq),
            _ => throw new InputError(where, $"metric \"{metric}\" is unknown", "Use allocated, active, reserved, nvidia-smi, rss-growth, kv-bytes-per-token, max-seq or fits-within."),
        };
    }

    /// <summary>
    /// Multi-GPU rows (issue 6): the per-GPU ledger of the layout in plan_args. allocated = tensors (without CUDA context,
    /// NCCL and allocator reserve); reserved = + allocator reserve; nvidia-smi = everything; cpu-ram-per-node = the node's RAM.
    /// </summary>
    private static double PredictParallel(Plan plan, ParallelLayout layout, string metric, string where)
    {
        var l = ParallelMemory.Plan(PlanBridge.FromPlan(plan), layout);
        return metric switch
        {
            "allocated" or "active" => l.GpuAllocatedPeakBytes,
            "reserved" => l.GpuPeakBytes - l.GpuRuntimeBytes,
            "nvidia-smi" or "unknown" => l.GpuPeakBytes,
            "cpu-ram-per-node" => l.CpuBytesPerNode,
            _ => throw new InputError(where, $"metric \"{metric}\" is not defined for multi-GPU rows", "Use allocated, reserved, nvidia-smi or cpu-ram-per-node."),
        };
    }

    private static string Get(Dictionary<string, string> r, string key) =>
        r.TryGetValue(key, out var v) ? v : throw new InputError(key, "column missing from a ground-truth CSV", "Add the column to the header.");

    private static double? Number(Dictionary<string, string> r, string key) =>
        r.TryGetValue(key, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
}
