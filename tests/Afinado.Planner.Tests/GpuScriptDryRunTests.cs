using System.Globalization;
using Afinado.Planner.Architecture;
using Afinado.Planner.Tests.GpuBench;

namespace Afinado.Planner.Tests;

/// <summary>One full CPU dry run of bench/gpu/measure.py, shared by the tests that read it.</summary>
public sealed class FullDryRun
{
    internal GpuScript.Result Result { get; } = GpuScript.Run("--dry-run");
}

/// <summary>The test classes that read the full dry run share one (about 10 s of CPU).</summary>
[CollectionDefinition(Name)]
public sealed class GpuDryRunCollection : ICollectionFixture<FullDryRun>
{
    public const string Name = "GPU script dry run";
}

/// <summary>
/// bench/gpu/measure.py runs on CPU (Debian's python3-torch, tiny widths) before any GPU time is spent on it:
/// these tests hold its logic — the grid, the CSV contract, what trains, recovery from OOM, the time budget.
/// </summary>
[Collection(GpuDryRunCollection.Name)]
public sealed class GpuScriptDryRunTests(FullDryRun dry)
{
    private static readonly string[] RequiredColumns =
    [
        "schema", "row_id", "status", "message", "model", "config_layers", "layers", "task", "phase", "method",
        "precision", "weights_dtype", "optimizer", "optimizer_impl", "batch", "seq", "checkpointing", "attention",
        "attention_kernel", "lora_rank", "lora_alpha", "lora_targets", "lora_dropout", "adapter_dtype", "frozen",
        "logits", "kv_cache", "hidden_size", "intermediate_size", "num_heads", "num_kv_heads", "head_dim",
        "vocab_size", "tied_embeddings", "params_model", "params_adapter", "params_trainable",
        "peak_allocated_bytes", "peak_reserved_bytes", "iter1_peak_allocated_bytes", "allocated_before_bytes",
        "end_allocated_bytes", "device_used_bytes", "context_bytes", "context_warm_bytes", "peak_rss_bytes",
        "device", "gpu_name", "model_impl", "torch_version", "transformers_version", "peft_version", "config_file",
        "alloc_conf", "decode_steps", "kv_dtype", "alloc_expandable", "snapshot_file", "optimizer_in_backward",
    ];

    private static long L(IReadOnlyDictionary<string, string> row, string column) =>
        long.Parse(row[column], CultureInfo.InvariantCulture);

    [Fact]
    public void Dry_run_succeeds_and_writes_the_documented_columns()
    {
        Assert.True(dry.Result.ExitCode == 0, dry.Result.Output);
        var csv = dry.Result.Csv;
        Assert.Empty(RequiredColumns.Except(csv.Columns));
        Assert.All(csv.Rows, r => Assert.Equal("afinado.gpu-ground-truth/1", r["schema"]));
        Assert.All(csv.Rows, r => Assert.Equal("cpu", r["device"]));
        Assert.Equal(csv.Rows.Count, csv.Rows.Select(r => r["row_id"]).Distinct().Count());
    }

    [Fact]
    public void Dry_run_measures_at_least_70_rows_covering_every_case_of_the_grid()
    {
        var ok = dry.Result.Csv.Ok.ToList();
        Assert.True(ok.Count >= 70, $"{ok.Count} ok rows\n{dry.Result.Output}");
        void Covers(string column, params string[] values) =>
            Assert.Empty(values.Except(ok.Select(r => r[column])));
        Covers("task", "train", "infer");
        Covers("phase", "step", "prefill", "decode");
        Covers("method", "full", "freeze", "lora", "none");
        Covers("precision", "fp32", "amp-bf16", "bf16");
        Covers("checkpointing", "none", "full");
        Covers("attention", "sdpa", "eager");
        Covers("lora_rank", "8", "64");
        Covers("model", "HuggingFaceTB/SmolLM2-135M", "meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B",
            "meta-llama/Llama-3.1-8B", "meta-llama/Llama-2-7b-hf", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "Qwen/Qwen2.5-0.5B");
        Assert.All(ok, r => Assert.True(L(r, "peak_rss_bytes") > 0, r["row_id"]));
        // No row may be skipped for a missing catalog config: every model the grid names ships in the catalog.
        Assert.DoesNotContain(dry.Result.Csv.Rows, r => r["message"].Contains("is missing from"));
    }

    [Fact]
    public void What_trains_follows_the_method()
    {
        foreach (var r in dry.Result.Csv.Ok)
        {
            long model = L(r, "params_model"), adapter = L(r, "params_adapter"), trainable = L(r, "params_trainable");
            switch (r["method"])
            {
                case "full": Assert.True(trainable == model && adapter == 0, r["row_id"]); break;
                case "freeze": Assert.True(trainable > 0 && trainable < model && adapter == 0, r["row_id"]); break;
                case "lora": Assert.True(trainable == adapter && adapter > 0, r["row_id"]); break;
                case "none": Assert.True(trainable == 0 && r["task"] == "infer", r["row_id"]); break;
                default: Assert.Fail($"unexpected method {r["method"]}"); break;
            }
        }
    }

    [Fact]
    public void Models_are_built_in_the_weights_dtype_of_their_precision()
    {
        var expected = new Dictionary<string, string> { ["fp32"] = "float32", ["amp-bf16"] = "float32", ["bf16"] = "bfloat16" };
        Assert.All(dry.Result.Csv.Ok, r => Assert.Equal(expected[r["precision"]], r["weights_dtype"]));
        Assert.All(dry.Result.Csv.Ok.Where(r => r["method"] == "lora"), r => Assert.Equal("float32", r["adapter_dtype"]));
    }

    [Fact]
    public void Built_models_have_exactly_the_planners_parameter_and_lora_adapter_counts()
    {
        var configs = dry.Result.ConfigsUsed;
        foreach (var r in dry.Result.Csv.Ok)
        {
            var arch = HfConfigReader.Parse(configs[r["config_file"]], r["config_file"]);
            Assert.True(arch.ParameterCount == L(r, "params_model"), $"{r["row_id"]}: planner {arch.ParameterCount}");
            Assert.Equal(arch.NumLayers, int.Parse(r["layers"], CultureInfo.InvariantCulture));
            if (r["method"] != "lora") continue;
            long rank = L(r, "lora_rank");
            long perLayer = r["lora_targets"].Split(';').Sum(t => t switch
            {
                "q_proj" => rank * (arch.HiddenSize + arch.QueryWidth),
                "k_proj" or "v_proj" => rank * (arch.HiddenSize + arch.KvWidth),
                "o_proj" => rank * (arch.QueryWidth + arch.HiddenSize),
                "gate_proj" or "up_proj" or "down_proj" => rank * (arch.HiddenSize + arch.IntermediateSize),
                _ => throw new InvalidDataException($"unknown LoRA target {t}"),
            });
            Assert.True(perLayer * arch.NumLayers == L(r, "params_adapter"), r["row_id"]);
        }
    }

    [Fact]
    public void Reduced_rows_record_both_the_real_and_the_built_layer_count()
    {
        var reduced = dry.Result.Csv.Rows.Where(r => r["row_id"].Contains("@L")).ToList();
        Assert.NotEmpty(reduced);
        Assert.All(dry.Result.Csv.Ok, r =>
            Assert.True(L(r, "layers") <= L(r, "config_layers"), r["row_id"]));
        Assert.Contains(dry.Result.Csv.Ok, r => r["model"] == "meta-llama/Llama-3.1-8B" && r["config_layers"] == "32");
    }

    [Fact]
    public void Freeze_rows_name_their_patterns_in_the_planners_glob_syntax()
    {
        var freeze = dry.Result.Csv.Ok.Where(r => r["method"] == "freeze").ToList();
        Assert.NotEmpty(freeze);
        Assert.All(freeze, r => Assert.StartsWith("model.embed_tokens;model.layers.{0..", r["frozen"]));
    }

    [Fact]
    public void An_oom_is_recorded_and_the_next_job_runs_and_a_missing_config_is_named()
    {
        var configs = Directory.CreateTempSubdirectory("afinado-gpu-configs-").FullName;
        File.Copy(Path.Combine(GpuScript.CatalogConfigs, "meta-llama--Llama-3.2-1B.json"),
            Path.Combine(configs, "meta-llama--Llama-3.2-1B.json"));
        var run = GpuScript.Run("--dry-run", "--configs-dir", configs,
            "--only", "^llama3.2-1b/train/full/(fp32|amp-bf16)/adamw/b2-s1024/sdpa/ckpt-none$|^llama3.1-8b/prefill/bf16/b1-s4096/sdpa$",
            "--inject-oom", "/fp32/");
        Assert.True(run.ExitCode == 0, run.Output);
        var rows = run.Csv.Rows.ToDictionary(r => r["row_id"]);
        Assert.Equal(3, rows.Count);
        var oom = rows["llama3.2-1b/train/full/fp32/adamw/b2-s1024/sdpa/ckpt-none"];
        Assert.Equal("oom", oom["status"]);
        Assert.Equal("", oom["peak_allocated_bytes"]);
        Assert.Equal("ok", rows["llama3.2-1b/train/full/amp-bf16/adamw/b2-s1024/sdpa/ckpt-none"]["status"]);
        var missing = rows["llama3.1-8b/prefill/bf16/b1-s4096/sdpa"];
        Assert.Equal("skipped", missing["status"]);
        Assert.Contains("meta-llama--Llama-3.1-8B.json", missing["message"]);
    }

    [Fact]
    public void Past_the_time_budget_no_job_starts_but_every_row_is_still_written()
    {
        var run = GpuScript.Run("--dry-run", "--budget-seconds", "0", "--only", "^smollm2-135m/");
        Assert.True(run.ExitCode == 0, run.Output);
        // The ten core rows, the b16 × 2048 row and its expandable-segments twin (no subprocess is started for it).
        Assert.Equal(12, run.Csv.Rows.Count);
        Assert.All(run.Csv.Rows, r =>
        {
            Assert.Equal("skipped", r["status"]);
            Assert.Contains("time budget", r["message"]);
        });
        Assert.Equal("expandable_segments:True", run.Csv.Rows.Single(r => r["row_id"].EndsWith("/alloc-expandable")) ["alloc_conf"]);
        Assert.Equal(0, run.RunInfo.GetProperty("subprocesses").GetArrayLength());
        // The address-order probe runs on CUDA only; on the CPU dry run the field is there and says so.
        var order = run.RunInfo.GetProperty("segment_address_order");
        Assert.Equal("", order.GetProperty("order").GetString());
        Assert.Equal("not probed", order.GetProperty("note").GetString());
    }

    [Fact]
    public void When_the_first_jobs_all_fail_the_run_stops_early_and_exits_1()
    {
        var configs = Directory.CreateTempSubdirectory("afinado-gpu-broken-").FullName;
        File.WriteAllText(Path.Combine(configs, "meta-llama--Llama-3.2-1B.json"), "{\"model_type\": \"llama\"");
        var run = GpuScript.Run("--dry-run", "--configs-dir", configs, "--only", "^llama3.2-1b/train/full/");
        Assert.Equal(1, run.ExitCode);
        var statuses = run.Csv.Rows.Select(r => r["status"]).ToList();
        Assert.Equal(["error", "error", "error"], statuses.Take(3));
        Assert.All(run.Csv.Rows.Skip(3), r => Assert.Contains("--fail-fast", r["message"]));
        Assert.True(statuses.Count > 3);
    }
}
