using System.Text.Json;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Cli.Tests;

public class PlanCommandTests
{
    [Fact]
    public async Task List_models_prints_every_catalog_id_that_model_accepts()
    {
        // The "does not exist" error for --model points here, so it must exist and list what --model accepts.
        var (code, output, _) = await CliRun.Run("plan", "--list-models");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var ids = lines.Select(l => l.Split(' ')[0]).ToList();
        // The model_type column starts at the same place on every line, however long the id.
        Assert.Single(lines.Select(l => l.IndexOf(' ' + l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] + ' ', StringComparison.Ordinal)).Distinct());
        Assert.Equal(Afinado.Planner.Catalog.ModelCatalog.Ids.Count, ids.Count);
        foreach (var id in ids) Assert.Contains((await CliRun.Run("plan", "--model", id, "--gpu", "h100", "--json")).Code, new[] { CliApp.ExitOk, CliApp.ExitDoesNotFit });
    }

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliRun.Run(args);

    [Fact]
    public async Task Default_plan_prints_the_ledger_and_exits_0()
    {
        var (code, output, _) = await Run("plan");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("Llama-3.1-8B", output);
        Assert.Contains("peak", output);
        Assert.Contains("trainable params:", output);
        Assert.Contains("RTX 4090", output);
    }

    [Fact]
    public async Task When_no_change_fits_one_gpu_the_plan_says_so_and_points_to_the_gpu_search()
    {
        // gpt-oss-20b's bf16 experts stay 16-bit under bitsandbytes (fused parameters, not nn.Linear): nothing tried fits 24 GB.
        var (code, output, _) = await Run("plan", "--model", "openai/gpt-oss-20b", "--gpu", "rtx4090");
        Assert.Equal(CliApp.ExitDoesNotFit, code);
        Assert.Contains("None of these fits one RTX 4090", output);
        Assert.Contains("--fewest-gpus", output);
        Assert.DoesNotContain("None of these fits", (await Run("plan", "--gpu", "rtx4090")).Out);
        // Layouts are planned for training: inference that fits no single GPU is not pointed to the GPU search.
        // DeepSeek-V3's FP8 checkpoint: no change tried lowers its total (NF4 / int8 leave the fused experts 16-bit).
        var (_, inference, _) = await Run("plan", "--model", "deepseek-ai/DeepSeek-V3", "--task", "infer", "--gpu", "h100");
        Assert.Contains("No single change or combination makes the job fit one H100", inference);
        Assert.Contains("need at least 9 H100", inference);
        Assert.DoesNotContain("--fewest-gpus", inference);
    }

    [Fact]
    public async Task Image_inputs_are_planned_from_the_flags_and_bad_ones_exit_2_naming_the_flag()
    {
        var (code, output, err) = await Run("plan", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--images", "2", "--image-size", "1024x768", "--seq", "4096", "--gpu", "h200", "--json");
        Assert.Equal(CliApp.ExitOk, code);
        // 1024×768 resizes to 1036×756: 74 × 54 patches, 999 tokens and the two markers.
        Assert.Contains("2 images of 1036×756 per sequence (1,001 tokens each, in the seq)", err);
        using var doc = JsonDocument.Parse(output);
        var image = doc.RootElement.GetProperty("job").GetProperty("image");
        Assert.Equal((1036, 756, 3996, 1001), (image.GetProperty("width").GetInt32(), image.GetProperty("height").GetInt32(),
            image.GetProperty("patches").GetInt32(), image.GetProperty("sequence_tokens").GetInt32()));
        Assert.Contains(doc.RootElement.GetProperty("components").EnumerateArray(), c => c.GetProperty("name").GetString() == "vision tower: saved activations");

        var (badSize, _, sizeError) = await Run("plan", "--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--images", "1", "--image-size", "1024 by 768");
        Assert.Equal(CliApp.ExitBadInput, badSize);
        Assert.Contains("--image-size", sizeError);
        var (textModel, _, textError) = await Run("plan", "--images", "1");
        Assert.Equal(CliApp.ExitBadInput, textModel);
        Assert.Contains("error: --images: llama is a text model", textError);
    }

    [Fact]
    public async Task Json_contract_has_the_documented_fields()
    {
        var (code, output, err) = await Run("plan", "--json", "--gpu", "a100-80gb", "--gpu-memory", "24GiB", "--max", "batch");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("peak", err); // the table goes to stderr with --json
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        Assert.Equal("afinado.plan/1", r.GetProperty("schema").GetString());
        Assert.Equal(8_030_261_248, r.GetProperty("model").GetProperty("parameters").GetInt64());
        Assert.Equal(41_943_040, r.GetProperty("model").GetProperty("trainable_parameters").GetInt64());
        long peak = r.GetProperty("peak_bytes").GetInt64();
        long total = r.GetProperty("total_bytes").GetInt64();
        Assert.True(total > peak && peak > 16_000_000_000);
        Assert.False(string.IsNullOrEmpty(r.GetProperty("peak_phase").GetString()));
        long sum = 0;
        foreach (var c in r.GetProperty("components").EnumerateArray())
        {
            Assert.False(string.IsNullOrEmpty(c.GetProperty("name").GetString()));
            Assert.True(Enum.TryParse<LineKind>(c.GetProperty("kind").GetString(), out _));
            Assert.False(string.IsNullOrEmpty(c.GetProperty("formula").GetString()));
            sum += c.GetProperty("bytes").GetInt64();
        }
        Assert.InRange(sum - peak, 0, 64);
        var gpus = r.GetProperty("gpus").EnumerateArray().ToList();
        Assert.Equal(2, gpus.Count);
        Assert.Equal("a100-80gb", gpus[0].GetProperty("gpu").GetString());
        Assert.True(gpus[0].GetProperty("fits").GetBoolean());
        Assert.Equal(gpus[0].GetProperty("capacity_bytes").GetInt64() - total, gpus[0].GetProperty("headroom_bytes").GetInt64());
        Assert.Equal(24L * 1024 * 1024 * 1024, gpus[1].GetProperty("capacity_bytes").GetInt64());
        var search = r.GetProperty("search");
        Assert.Equal("batch", search.GetProperty("parameter").GetString());
        Assert.True(search.GetProperty("value").GetInt32() > 1);
    }

    [Fact]
    public async Task Json_carries_reserved_fragmentation_stack_and_the_verdicts_reading()
    {
        var (code, output, err) = await Run("plan", "--json", "--gpu-memory", "48GB", "--alloc-conf", "expandable_segments:True", "--stack", "torch2-cuda12");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("sold as 48 GB", err);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        long peak = r.GetProperty("peak_bytes").GetInt64(), reserved = r.GetProperty("reserved_bytes").GetInt64(), total = r.GetProperty("total_bytes").GetInt64();
        long fragmentation = r.GetProperty("fragmentation_bytes").GetInt64();
        Assert.True(peak < reserved && reserved < total);
        Assert.InRange(reserved - peak - fragmentation, 64L << 20, (64L << 20) + 2); // the stack's cuBLAS workspaces
        Assert.Equal(300_000_000, total - reserved, tolerance: 2);                 // torch2-cuda12's context
        Assert.True(r.GetProperty("allocator_replayed").GetBoolean());
        Assert.Equal("expandable_segments:True", r.GetProperty("job").GetProperty("alloc_conf").GetString());
        Assert.Equal("torch2-cuda12", r.GetProperty("job").GetProperty("stack").GetString());
        var gpu = r.GetProperty("gpus")[0];
        Assert.Contains("48 GiB on board", gpu.GetProperty("interpretation").GetString());
        Assert.True(gpu.TryGetProperty("borderline", out _));
        Assert.Contains(r.GetProperty("runtime").EnumerateArray(), e => e.GetProperty("kind").GetString() == nameof(LineKind.AllocatorFragmentation));
    }

    [Fact]
    public async Task A_job_that_fits_only_after_cache_releases_says_what_the_card_holds_in_both_outputs()
    {
        string[] job = ["--model", "meta-llama/Llama-3.1-8B", "--method", "full", "--precision", "bf16", "--seq", "1024", "--gpu", "h100"];
        var (code, output, _) = await Run(["plan", "--json", .. job]);
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var gpu = doc.RootElement.GetProperty("gpus")[0];
        long total = doc.RootElement.GetProperty("total_bytes").GetInt64(), held = gpu.GetProperty("total_after_release_bytes").GetInt64();
        Assert.True(gpu.GetProperty("fits_after_cache_release").GetBoolean());
        Assert.True(held <= gpu.GetProperty("capacity_bytes").GetInt64() && held < total);
        Assert.Equal(held - gpu.GetProperty("reserved_after_release_bytes").GetInt64(), total - doc.RootElement.GetProperty("reserved_bytes").GetInt64());
        var (_, table, _) = await Run(["plan", .. job]);
        Assert.Contains($"holding {ByteSize.Format(held)}", table);
    }

    [Fact]
    public async Task A_bitsandbytes_qlora_plan_says_what_prepare_model_for_kbit_training_adds()
    {
        var (code, output, err) = await Run("plan", "--json", "--method", "qlora", "--gpu", "rtx4090", "--checkpointing", "full");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("--kbit-prep", err);
        using var doc = JsonDocument.Parse(output);
        long total = doc.RootElement.GetProperty("total_bytes").GetInt64();
        Assert.True(doc.RootElement.GetProperty("kbit_prep_total_bytes").GetInt64() > total);
        // With the flag given, the note (and the field) go away and the total is the prepared one.
        var (code2, output2, err2) = await Run("plan", "--json", "--method", "qlora", "--gpu", "rtx4090", "--checkpointing", "full", "--kbit-prep");
        Assert.Equal(CliApp.ExitOk, code2);
        Assert.DoesNotContain("with --kbit-prep", err2);
        using var doc2 = JsonDocument.Parse(output2);
        Assert.False(doc2.RootElement.TryGetProperty("kbit_prep_total_bytes", out _));
        Assert.True(doc2.RootElement.GetProperty("job").GetProperty("kbit_prep").GetBoolean());
        Assert.Equal(doc.RootElement.GetProperty("kbit_prep_total_bytes").GetInt64(), doc2.RootElement.GetProperty("total_bytes").GetInt64());
    }

    [Fact]
    public async Task Max_seq_for_bitsandbytes_qlora_also_answers_for_the_prepared_model()
    {
        var (code, output, err) = await Run("plan", "--json", "--method", "qlora", "--checkpointing", "full", "--gpu-memory", "12GB", "--max", "seq");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("with --kbit-prep", err);
        using var doc = JsonDocument.Parse(output);
        var search = doc.RootElement.GetProperty("search");
        int plain = search.GetProperty("value").GetInt32(), prepared = search.GetProperty("value_with_kbit_prep").GetInt32();
        Assert.True(prepared > 0 && prepared < plain, $"{prepared} vs {plain}");
    }

    [Fact]
    public async Task Plan_that_fits_no_gpu_exits_3_with_fixes()
    {
        var (code, output, _) = await Run("plan", "--json", "--method", "full", "--precision", "amp-bf16", "--gpu", "t4", "--max", "batch");
        Assert.Equal(CliApp.ExitDoesNotFit, code);
        using var doc = JsonDocument.Parse(output);
        Assert.False(doc.RootElement.GetProperty("gpus")[0].GetProperty("fits").GetBoolean());
        Assert.Equal(0, doc.RootElement.GetProperty("search").GetProperty("value").GetInt32());
        // --max answering 0 names the change that makes batch 1 fit.
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("search").GetProperty("unlock").GetString()));
        Assert.NotEqual(0, doc.RootElement.GetProperty("fixes").GetArrayLength());
    }

    [Theory]
    [InlineData("--batch", "0")]
    [InlineData("--seq", "-1")]
    [InlineData("--lora-targets", "c_attn")]
    [InlineData("--gpu-memory", "24")]
    [InlineData("--gpu-memory", "48TB")]
    [InlineData("--gpu", "gtx970")]
    [InlineData("--precision", "fp8")]
    [InlineData("--method", "ia3")]
    [InlineData("--max", "rank")]
    [InlineData("--freeze", "model.layers.{9..1}")]
    [InlineData("--device", "tpu")]
    [InlineData("--rule", "mezo")]
    [InlineData("--guided-es-k", "0")]
    [InlineData("--batch", "abc")]
    [InlineData("--model", "/nonexistent/config.json")]
    [InlineData("--alloc-conf", "expandable_segments:maybe")]
    [InlineData("--alloc-conf", "roundup_power2_divisions:4")]
    [InlineData("--stack", "torch3-cuda15")]
    [InlineData("--kv-cache", "paged")]
    [InlineData("--experts", "sonicmoe")]
    [InlineData("--attention", "xformers")]
    [InlineData("--lora-target-parameters", "mlp.experts.gate_up_proj")]
    public async Task Bad_input_exits_2_naming_the_flag(string flag, string value)
    {
        var (code, _, err) = await Run("plan", flag, value);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains(flag, err);
        Assert.DoesNotContain("   at ", err);
    }

    [Theory]
    [InlineData("--lora-dropout", "0.1")]
    [InlineData("--lora-alpha", "8")]
    [InlineData("--lora-targets", "q_proj")]
    public async Task A_lora_flag_without_adapters_is_named_as_given(string flag, string value)
    {
        var (code, _, err) = await Run("plan", "--method", "full", flag, value);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith($"error: {flag}:", err.Trim());
    }

    [Fact]
    public async Task The_experts_backend_follows_the_stack_and_the_flag()
    {
        string[] job = ["plan", "--json", "--model", "Qwen/Qwen3-30B-A3B", "--method", "lora", "--lora-targets", "q_proj,v_proj", "--gpu", "h100"];
        async Task<(string Experts, long Mlp)> Plan(params string[] extra)
        {
            var (code, output, err) = await Run([.. job, .. extra]);
            Assert.True(code is CliApp.ExitOk or CliApp.ExitDoesNotFit, err);
            using var doc = JsonDocument.Parse(output);
            var lines = doc.RootElement.GetProperty("components").EnumerateArray().Concat(doc.RootElement.GetProperty("other_components").EnumerateArray());
            return (doc.RootElement.GetProperty("job").GetProperty("experts").GetString()!,
                lines.Single(e => e.GetProperty("kind").GetString() == nameof(LineKind.ActivationsMlp)).GetProperty("bytes").GetInt64());
        }
        var byDefault = await Plan();
        var eager = await Plan("--experts", "eager");
        var oldStack = await Plan("--stack", "torch2-cuda12");
        // torch 2.11 has grouped_mm, so transformers 5 runs the experts through it; torch 2.0–2.5 falls back to the loop,
        // whose index_add_ source is one more hidden-width tensor per routed pair.
        Assert.Equal("grouped_mm", byDefault.Experts);
        Assert.Equal(("eager", eager.Mlp), oldStack);
        Assert.True(eager.Mlp > byDefault.Mlp);
    }

    [Fact]
    public async Task Stacked_experts_take_lora_through_target_parameters()
    {
        var (code, output, err) = await Run("plan", "--json", "--model", "openai/gpt-oss-20b", "--method", "lora", "--lora-dropout", "0",
            "--lora-target-parameters", "mlp.experts.gate_up_proj,mlp.experts.down_proj", "--seq", "512", "--gpu-memory", "192GB");
        Assert.True(code == CliApp.ExitOk, err);
        using var doc = JsonDocument.Parse(output);
        var lora = doc.RootElement.GetProperty("job").GetProperty("lora");
        Assert.Equal(["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], lora.GetProperty("target_parameters").EnumerateArray().Select(e => e.GetString()!));
        var lines = doc.RootElement.GetProperty("components").EnumerateArray().Concat(doc.RootElement.GetProperty("other_components").EnumerateArray());
        Assert.Contains(lines, e => e.GetProperty("kind").GetString() == nameof(LineKind.ExpertDeltaWeight));
        // The default LoRA dropout (0.05) is refused by PEFT's ParamWrapper: the error names the flag and the fix.
        var (bad, _, badErr) = await Run("plan", "--model", "openai/gpt-oss-20b", "--method", "lora", "--lora-target-parameters", "mlp.experts.gate_up_proj");
        Assert.Equal(CliApp.ExitBadInput, bad);
        Assert.Contains("--lora-dropout 0", badErr);
    }

    [Fact]
    public async Task Cpu_device_plans_fp32_without_cuda_context()
    {
        var (code, output, _) = await Run("plan", "--json", "--device", "cpu", "--model", "meta-llama/Llama-3.2-3B", "--method", "lora", "--seq", "128");
        Assert.Equal(CliApp.ExitOk, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("cpu", doc.RootElement.GetProperty("device").GetString());
        Assert.Equal("fp32", doc.RootElement.GetProperty("job").GetProperty("precision").GetString());
        // No CUDA context or allocator reserve: the one runtime line is the measured libtorch/TorchSharp CPU training runtime.
        var runtime = doc.RootElement.GetProperty("runtime");
        Assert.Equal(1, runtime.GetArrayLength());
        Assert.Equal(nameof(LineKind.CpuTrainingRuntime), runtime[0].GetProperty("kind").GetString());
        Assert.Equal(doc.RootElement.GetProperty("peak_bytes").GetInt64() + doc.RootElement.GetProperty("runtime_bytes").GetInt64(),
            doc.RootElement.GetProperty("total_bytes").GetInt64());
    }

    [Theory]
    [InlineData("es", "gpu")]
    [InlineData("es-direct", "cpu")]
    [InlineData("dfa", "gpu")]
    [InlineData("guided-es", "cpu")]
    public async Task Rule_mode_plans_any_catalog_model_and_reports_the_rule(string rule, string device)
    {
        var (code, output, err) = await Run("plan", "--json", "--rule", rule, "--device", device, "--model", "meta-llama/Llama-3.1-8B", "--method", "lora", "--seq", "512");
        Assert.True(code is CliApp.ExitOk or CliApp.ExitDoesNotFit, err);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(rule, doc.RootElement.GetProperty("job").GetProperty("rule").GetString());
        var kinds = doc.RootElement.GetProperty("components").EnumerateArray().Concat(doc.RootElement.GetProperty("other_components").EnumerateArray())
            .Select(c => c.GetProperty("kind").GetString()!).ToList();
        Assert.Equal(rule is "es" or "es-direct" or "guided-es", kinds.Contains(nameof(LineKind.EsPerturbation)));
        Assert.Equal(rule is "dfa" or "guided-es", kinds.Contains(nameof(LineKind.DfaFeedbackMatrices)));
    }

    [Fact]
    public async Task Es_lora_on_llama_8b_plans_far_below_backprop()
    {
        static async Task<long> Total(params string[] extra)
        {
            var (_, output, _) = await Run(["plan", "--json", "--model", "meta-llama/Llama-3.1-8B", "--method", "lora", .. extra]);
            using var doc = JsonDocument.Parse(output);
            return doc.RootElement.GetProperty("total_bytes").GetInt64();
        }
        long backprop = await Total(), es = await Total("--rule", "es");
        Assert.True(es < backprop - 4_000_000_000L, $"es {es:N0} vs backprop {backprop:N0}");
        var (_, table, _) = await Run("plan", "--model", "meta-llama/Llama-3.1-8B", "--method", "lora", "--rule", "es-direct");
        Assert.Contains("rule es-direct", table);
        Assert.Contains("perturbed forward", table);
    }

    [Fact]
    public async Task Loop_and_loss_flags_reach_the_json_and_raise_the_peak()
    {
        static async Task<JsonElement> Plan(params string[] extra)
        {
            var (code, output, err) = await Run(["plan", "--json", "--model", "meta-llama/Llama-2-7b-hf", "--method", "lora", "--batch", "4", "--checkpointing", "full", "--gpu", "h100", .. extra]);
            Assert.True(code == CliApp.ExitOk, err);
            return JsonDocument.Parse(output).RootElement.Clone();
        }
        var plain = await Plan();
        var held = await Plan("--legacy-loss", "--keep-output");
        Assert.False(plain.GetProperty("job").GetProperty("keep_output").GetBoolean());
        Assert.True(held.GetProperty("job").GetProperty("keep_output").GetBoolean());
        Assert.True(held.GetProperty("job").GetProperty("legacy_loss").GetBoolean());
        // The held fp32 logits: 4 B × 4 × 2048 tokens × 32,000.
        Assert.InRange(held.GetProperty("peak_bytes").GetInt64() - plain.GetProperty("peak_bytes").GetInt64() - 4L * 4 * 2048 * 32_000, -64, 64);
        var (code, _, err) = await Run("plan", "--legacy-loss", "--loss-chunks", "8");
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("--legacy-loss", err);
    }

    [Fact]
    public async Task Cpu_device_rejects_16_bit_precision()
    {
        var (code, _, err) = await Run("plan", "--device", "cpu", "--precision", "bf16");
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("--precision", err);
    }

    [Fact]
    public async Task Inference_plan_lists_kv_cache()
    {
        var (code, output, _) = await Run("plan", "--json", "--task", "infer", "--seq", "1024", "--context", "8192", "--batch", "8", "--gpu", "l4");
        using var doc = JsonDocument.Parse(output);
        var kinds = doc.RootElement.GetProperty("components").EnumerateArray().Concat(doc.RootElement.GetProperty("other_components").EnumerateArray())
            .Select(c => c.GetProperty("kind").GetString()).ToList();
        Assert.Contains(nameof(LineKind.KvCacheFullContext), kinds);
        Assert.True(code is CliApp.ExitOk or CliApp.ExitDoesNotFit);
    }

    [Fact]
    public async Task A_gpu_that_dequantizes_or_lacks_a_kernel_says_so_in_the_verdict()
    {
        var (code, _, err) = await CliRun.Run("plan", "--model", "openai/gpt-oss-20b", "--task", "infer", "--seq", "1024", "--gpu", "v100-32gb", "--gpu", "h100", "--json");
        Assert.Equal(CliApp.ExitOk, code); // the H100 runs it as stored
        Assert.Contains("(as bf16, dequantized)", err);
        Assert.Contains("mxfp4 weights need compute capability 7.5 and this GPU has 7.0", err);
        Assert.Contains("--weights-dtype bf16", err);

        var flash = await CliRun.Run("plan", "--model", "meta-llama/Llama-3.2-1B", "--attention", "flash", "--seq", "512", "--gpu", "t4");
        Assert.Equal(CliApp.ExitDoesNotFit, flash.Code);
        Assert.Contains("cannot run", flash.Out);
        Assert.Contains("use --attention sdpa", flash.Out);
    }
}
