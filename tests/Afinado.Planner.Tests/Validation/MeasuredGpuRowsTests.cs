using Afinado.Planner.Validation;

namespace Afinado.Planner.Tests.Validation;

/// <summary>
/// measure.py's CSVs (schema afinado.gpu-ground-truth/1) become planner jobs without any plan_args, so the planner's
/// harness reads them alone; the published.csv beside them is a header only.
/// </summary>
public class MeasuredGpuRowsTests
{
    private const string Header = "schema,row_id,status,message,model,config_layers,layers,task,phase,method,precision,weights_dtype,optimizer,optimizer_impl,batch,seq,checkpointing,attention,lora_rank,lora_alpha,lora_targets,lora_dropout,adapter_dtype,frozen,hidden_size,vocab_size,peak_allocated_bytes,allocated_before_bytes,device,gpu_name,gpu_total_bytes,model_impl,torch_version";

    private static string Row(string id, string status, string layers, string task, string phase, string method, string precision, string weights, string optimizer,
        string batch, string seq, string lora, string frozen, string hidden, string measured, string device) =>
        $"afinado.gpu-ground-truth/1,{id},{status},,meta-llama/Llama-3.2-1B,16,{layers},{task},{phase},{method},{precision},{weights},{optimizer},foreach,{batch},{seq},none,sdpa,{lora},{frozen},{hidden},128256,{measured},33554432,{device},NVIDIA H100 80GB HBM3,85045477376,transformers+peft,2.11";

    [Fact]
    public void Measure_py_rows_become_planner_jobs()
    {
        var dir = Directory.CreateTempSubdirectory("afinado-gpu");
        try
        {
            string noLora = ",,,,";
            File.WriteAllText(Path.Combine(dir.FullName, "published.csv"), File.ReadAllLines(Path.Combine(GroundTruth.FindDirectory(null), "published.csv"))[0] + "\n");
            File.WriteAllLines(Path.Combine(dir.FullName, "gpu-test.csv"),
            [
                Header,
                Row("amp", "ok", "16", "train", "step", "full", "amp-bf16", "float32", "adamw", "2", "1024", noLora, "", "2048", "25000000000", "cuda"),
                Row("lora", "ok", "16", "train", "step", "lora", "bf16", "bfloat16", "adamw", "2", "1024", "8,16,q_proj;v_proj,0,float32", "", "2048", "5000000000", "cuda"),
                Row("freeze", "ok", "16", "train", "step", "freeze", "amp-bf16", "float32", "adamw", "2", "1024", noLora, "model.embed_tokens;model.layers.{0..7}", "2048", "20000000000", "cuda"),
                Row("prefill", "ok", "16", "infer", "prefill", "none", "bf16", "bfloat16", "none", "1", "2048", noLora, "", "2048", "3000000000", "cuda"),
                Row("decode", "ok", "16", "infer", "decode", "none", "bf16", "bfloat16", "none", "1", "2048", noLora, "", "2048", "3000000000", "cuda"),
                Row("oom", "oom", "16", "train", "step", "full", "fp32", "float32", "adamw", "64", "4096", noLora, "", "2048", "", "cuda"),
                Row("dry", "ok", "2", "train", "step", "full", "fp32", "float32", "adamw", "2", "32", noLora, "", "128", "1000", "cpu"),
            ]);
            var gpu = GroundTruth.Validate(dir.FullName, GroundTruthTests.NoPlanArgs).Single(s => s.Name == "gpu-test");
            var rows = gpu.Rows.ToDictionary(r => r.Id);
            Assert.Equal(["gpu", "gpu", "gpu", "gpu", "gpu", "oom", "dry-run"], gpu.Rows.Select(r => r.Scope));
            Assert.All(gpu.Rows.Where(r => r.Scope == "gpu"), r => Assert.True(r.PredictedBytes > 2.4e9, r.Id));
            Assert.Equal(25e9 - 33554432, rows["amp"].MeasuredBytes);
            Assert.True(rows["amp"].PredictedBytes > rows["freeze"].PredictedBytes);
            Assert.True(rows["freeze"].PredictedBytes > rows["lora"].PredictedBytes);
            Assert.True(rows["decode"].PredictedBytes != rows["prefill"].PredictedBytes);
            Assert.Contains("agrees (OOM)", rows["oom"].Note);
            Assert.False(rows["dry"].Asserted);
        }
        finally { dir.Delete(recursive: true); }
    }

    /// <summary>
    /// Issue 14's rows append columns (decode_steps, kv_dtype, alloc_expandable, snapshot_file) after the older ones; the
    /// reader ignores what it does not know, and the settings it knows reach the job: more decode steps mean a longer
    /// cache, alloc_conf the replay's allocator, kv_dtype the cache's storage.
    /// </summary>
    [Fact]
    public void Columns_appended_by_later_measure_py_versions_are_read_by_name_or_ignored()
    {
        var dir = Directory.CreateTempSubdirectory("afinado-gpu");
        try
        {
            string noLora = ",,,,";
            File.WriteAllText(Path.Combine(dir.FullName, "published.csv"), File.ReadAllLines(Path.Combine(GroundTruth.FindDirectory(null), "published.csv"))[0] + "\n");
            string Decode(string id, string steps, string kv, string conf) =>
                Row(id, "ok", "16", "infer", "decode", "none", "bf16", "bfloat16", "none", "16", "4096", noLora, "", "2048", "5000000000", "cuda")
                + $",{conf},{steps},{kv},true,,a-future-column";
            File.WriteAllLines(Path.Combine(dir.FullName, "gpu-test.csv"),
            [
                Header + ",alloc_conf,decode_steps,kv_dtype,alloc_expandable,snapshot_file,future_column",
                Decode("two", "2", "", ""),
                Decode("empty", "", "", ""),
                Decode("long", "64", "", ""),
                Decode("fp8", "2", "fp8", ""),
                Decode("expandable", "64", "", "expandable_segments:True"),
                Row("train-split", "ok", "16", "train", "step", "full", "amp-bf16", "float32", "adamw", "4", "2048", noLora, "", "2048", "30000000000", "cuda")
                    + ",max_split_size_mb:128,,,false,,x",
                Row("train", "ok", "16", "train", "step", "full", "amp-bf16", "float32", "adamw", "4", "2048", noLora, "", "2048", "30000000000", "cuda")
                    + ",,,,false,,x",
            ]);
            var sources = GroundTruth.Validate(dir.FullName, GroundTruthTests.NoPlanArgs);
            var allocated = sources.Single(s => s.Name == "gpu-test").Rows.ToDictionary(r => r.Id);
            var reserved = sources.Single(s => s.Name == "gpu-test reserved").Rows.ToDictionary(r => r.Id);
            Assert.All(allocated.Values, r => Assert.Equal("gpu", r.Scope));
            Assert.Equal(allocated["two"].PredictedBytes, allocated["empty"].PredictedBytes);
            // 62 more tokens of Llama-3.2-1B's cache at batch 16: 16 layers × 2 × 8 heads × 64 × 2 B × 16 × 62 = 65 MB.
            Assert.Equal(16.0 * 2 * 8 * 64 * 2 * 16 * 62, allocated["long"].PredictedBytes!.Value - allocated["two"].PredictedBytes!.Value, 1e6);
            Assert.True(allocated["fp8"].PredictedBytes < allocated["two"].PredictedBytes - 1e9, "an fp8 cache holds half the bytes");
            Assert.NotEqual(reserved["long"].PredictedBytes, reserved["expandable"].PredictedBytes);
            Assert.NotEqual(reserved["train"].PredictedBytes, reserved["train-split"].PredictedBytes);
        }
        finally { dir.Delete(recursive: true); }
    }
}
