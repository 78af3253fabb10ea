using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Validation;

namespace Afinado.Planner.Tests;

/// <summary>
/// Issue 16's family rows of bench/gpu/grid.py (section 12), held before a GPU session measures them: they come last;
/// the CPU dry run (no transformers there, and its built-in stand-in is a Llama) skips each with that reason but still
/// cuts the configs to their depth the way the planner reads them back; and every row, as a measured CUDA row at real
/// widths, gets a prediction from the planner (dense, MoE, MLA, sinks, sliding and NoPE layers; training, LoRA,
/// prefill and decode).
/// </summary>
[Collection(GpuDryRunCollection.Name)]
public sealed class GpuScriptFamilyRowsTests(FullDryRun dry)
{
    private static readonly string[] Families =
        ["Qwen/Qwen3-0.6B", "google/gemma-3-1b-it", "Qwen/Qwen3-30B-A3B", "openai/gpt-oss-20b", "deepseek-ai/DeepSeek-V2-Lite-Chat",
         "HuggingFaceTB/SmolLM3-3B", "allenai/OLMo-2-1124-7B"];

    private List<IReadOnlyDictionary<string, string>> FamilyRows =>
        dry.Result.Csv.Rows.Where(r => Families.Contains(r["model"])).ToList();

    [Fact]
    public void The_family_rows_come_last_and_the_cpu_dry_run_skips_them_naming_why()
    {
        Assert.True(dry.Result.ExitCode == 0, dry.Result.Output);
        var rows = FamilyRows;
        Assert.Equal(24, rows.Count);
        Assert.Equal(rows, dry.Result.Csv.Rows.TakeLast(rows.Count));
        Assert.All(rows, r =>
        {
            Assert.True(r["status"] == "skipped", $"{r["row_id"]}: {r["status"]} {r["message"]}");
            Assert.Contains("needs transformers", r["message"]);
            Assert.NotEqual("", r["hidden_size"]);
        });
        Assert.All(Families, f => Assert.Contains(rows, r => r["model"] == f && r["task"] == "infer"));
        Assert.Contains(rows, r => r["model"] == "Qwen/Qwen3-30B-A3B" && r["method"] == "full");
    }

    [Fact]
    public void Configs_are_cut_to_the_row_s_depth_as_the_planner_reads_them()
    {
        foreach (var (name, node) in dry.Result.ConfigsUsed.Where(c => Families.Any(f => c.Key.StartsWith(f.Replace("/", "--"), StringComparison.Ordinal))))
        {
            var config = JsonNode.Parse(node)!.AsObject();
            int layers = config["num_hidden_layers"]!.GetValue<int>();
            foreach (string key in (string[])["layer_types", "no_rope_layers"])
                if (config[key] is JsonArray list) Assert.True(list.Count == layers, $"{name}: {key}");
            Assert.False(config.ContainsKey("quantization_config"), name);
            Assert.False(config.ContainsKey("auto_map"), name);
        }
        var gptOss = MeasuredGpuRows.Reduced(JsonNode.Parse(ModelCatalog.ConfigJson("openai/gpt-oss-20b"))!.AsObject(), 4);
        Assert.Equal(["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            gptOss["layer_types"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.False(gptOss.ContainsKey("quantization_config"));
    }

    [Fact]
    public void Each_row_measured_on_a_gpu_at_real_widths_gets_a_prediction()
    {
        foreach (var dryRow in FamilyRows)
        {
            var row = dryRow.ToDictionary(p => p.Key, p => p.Value);
            var config = MeasuredGpuRows.Reduced(JsonNode.Parse(ModelCatalog.ConfigJson(row["model"]))!.AsObject(), int.Parse(row["layers"]));
            var arch = HfConfigReader.Parse(config.ToJsonString(), row["row_id"]);
            // As the H100 would write it: real widths, a measured peak.
            row["device"] = "cuda";
            row["hidden_size"] = arch.HiddenSize.ToString();
            row["vocab_size"] = arch.VocabSize.ToString();
            row["status"] = "ok";
            row["weights_dtype"] = "bfloat16";
            row["adapter_dtype"] = row["method"] == "lora" ? "float32" : "";
            row["peak_allocated_bytes"] = "40000000000";
            row["allocated_before_bytes"] = "0";
            var mapped = MeasuredGpuRows.Map(row, 0.08);
            Assert.True(mapped.Scope == "gpu", $"{row["row_id"]}: {mapped.Scope} {mapped.Note}");
            Assert.True(mapped.PredictedBytes > 1e8, $"{row["row_id"]}: {mapped.PredictedBytes}");
        }
    }
}
