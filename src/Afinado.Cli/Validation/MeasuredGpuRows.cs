using System.Globalization;
using System.Text.Json.Nodes;
using Afinado.Planner;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Selection;

namespace Afinado.Cli.Validation;

/// <summary>
/// Rows of <c>bench/gpu/measure.py</c>'s CSV (schema <c>afinado.gpu-ground-truth/1</c>, committed as
/// <c>bench/ground-truth/gpu-*.csv</c>), turned into planner jobs. The comparison is the tensor peak:
/// measured = <c>peak_allocated_bytes − allocated_before_bytes</c> (the runtime's cuBLAS workspaces etc. are the
/// planner's runtime overhead), predicted = <c>peak_bytes</c> (training) or the prefill / decode moment (inference).
/// Rows that are not <c>ok</c> on CUDA are listed but not asserted; <c>oom</c> rows record whether the verdict agrees.
/// </summary>
internal static class MeasuredGpuRows
{
    public const string Schema = "afinado.gpu-ground-truth/1";

    public static bool Matches(List<Dictionary<string, string>> rows) =>
        rows.Count > 0 && rows[0].TryGetValue("schema", out var s) && s == Schema;

    public static ValidationRow Map(Dictionary<string, string> r, double tolerance)
    {
        string id = r["row_id"];
        string status = r["status"];
        if (r["device"] != "cuda") return new(id, "dry-run", "allocated", null, null, null, "CPU dry run at shrunk widths: not ground truth");
        if (status is "skipped" or "error") return new(id, status, "allocated", null, null, null, r.GetValueOrDefault("message", ""));
        var arch = Architecture(r);
        if (arch is null) return new(id, "mismatch", "allocated", null, null, null, "widths differ from the catalog config: not comparable");
        var job = JobOf(r);
        var plan = Planner.Fit.Planner.Create(arch, job, [], suggestFixes: false);
        var l = plan.Ledger;
        double predicted = r["phase"] switch
        {
            "prefill" => l.BytesAt(Phase.Prefill),
            "decode" => l.BytesAt(Phase.Decode),
            _ => l.PeakBytes,
        };
        if (status == "oom")
        {
            double capacity = Number(r, "gpu_total_bytes");
            bool agrees = l.TotalBytes > capacity;
            return new(id, "oom", "oom", null, l.TotalBytes, null,
                $"measured OOM on {capacity / (1 << 30):F1} GiB; planner total {l.TotalBytes / (double)(1 << 30):F1} GiB → verdict {(agrees ? "agrees (OOM)" : "DISAGREES (fits)")}");
        }
        double measured = Number(r, "peak_allocated_bytes") - Number(r, "allocated_before_bytes");
        return new(id, "gpu", "allocated", measured, predicted, tolerance, $"{r["model_impl"]}, torch {r["torch_version"]}, {r["gpu_name"]}");
    }

    private static Job JobOf(Dictionary<string, string> r)
    {
        int batch = (int)Number(r, "batch"), seq = (int)Number(r, "seq");
        var attention = JobOptions.ParseAttention(r["attention"]);
        var precision = JobOptions.ParsePrecision(r["precision"]);
        if (r["task"] == "infer")
            return new Job
            {
                Task = JobTask.Infer, Precision = precision, Attention = attention, Batch = batch, Seq = seq,
                // decode: the reported second step holds seq + 1 cached tokens going in and appends one more
                Context = r["phase"] == "decode" ? seq + 2 : seq,
                WeightsDtype = Dtype(r["weights_dtype"]),
            };
        var method = TrainingMethods.Parse(r["method"]);
        return new Job
        {
            Method = method,
            Precision = precision,
            Optimizer = OptimizerKind.AdamW,
            FusedOptimizer = r["optimizer"] == "adamw-fused" || r["optimizer_impl"] == "fused",
            Batch = batch,
            Seq = seq,
            Checkpointing = JobOptions.ParseCheckpointing(r["checkpointing"]),
            Attention = attention,
            FreezePatterns = method == TrainingMethod.Freeze ? r["frozen"].Split(';', StringSplitOptions.RemoveEmptyEntries) : [],
            Lora = method.UsesAdapters()
                ? new LoraConfig
                {
                    Rank = (int)Number(r, "lora_rank"),
                    Alpha = Number(r, "lora_alpha"),
                    Dropout = r["lora_dropout"].Length > 0 ? Number(r, "lora_dropout") : 0,
                    Targets = r["lora_targets"].Split(';', StringSplitOptions.RemoveEmptyEntries),
                }
                : null,
            AdapterDtype = method.UsesAdapters() ? Dtype(r["adapter_dtype"]) : null,
            WeightsDtype = method.UsesAdapters() ? Dtype(r["weights_dtype"]) : null,
        };
    }

    /// <summary>The catalog config with the row's layer count (rows reduce depth at real widths).</summary>
    private static ModelArchitecture? Architecture(Dictionary<string, string> r)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(r["model"]))!.AsObject();
        node["num_hidden_layers"] = (int)Number(r, "layers");
        var arch = HfConfigReader.Parse(node.ToJsonString(), $"{r["model"]} ({r["layers"]} layers)");
        return arch.HiddenSize == (int)Number(r, "hidden_size") && arch.VocabSize == (int)Number(r, "vocab_size") ? arch : null;
    }

    private static DType? Dtype(string torchName) => torchName switch
    {
        "float32" => DType.Fp32,
        "bfloat16" => DType.Bf16,
        "float16" => DType.Fp16,
        "" => null,
        _ => throw new InputError("weights_dtype", $"\"{torchName}\" is not a dtype the planner maps", "Use float32, bfloat16 or float16."),
    };

    private static double Number(Dictionary<string, string> r, string key) =>
        double.TryParse(r.GetValueOrDefault(key), NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v : throw new InputError(key, $"row {r.GetValueOrDefault("row_id")} has no number in {key}", "Check the CSV.");
}
