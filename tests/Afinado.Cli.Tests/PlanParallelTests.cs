using System.Text.Json.Nodes;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Cli.Tests;

public class PlanParallelTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = await CliApp.RunAsync(["plan", .. args], o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task A_layout_on_volta_cards_is_planned_for_the_step_they_run_and_says_so()
    {
        string[] args = ["--model", "meta-llama/Llama-3.1-8B", "--seq", "1024", "--gpu", "v100-32gb", "--gpu", "a100-80gb", "--gpus", "2", "--fsdp", "full"];
        var (code, stdout, _) = await Run(args);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("Note: V100 32GB: SDPA has no fused kernel for grouped KV heads", stdout);
        Assert.Contains("its per-GPU figures hold them", stdout);
        var (_, json, _) = await Run([.. args, "--json"]);
        var gpus = JsonNode.Parse(json)!["gpus"]!.AsArray();
        Assert.Contains("math kernel", (string?)gpus[0]!["sdpa_math_kernel"]);
        Assert.Null(gpus[1]!["sdpa_math_kernel"]);
        Assert.True((long)gpus[0]!["per_gpu_bytes"]! > (long)gpus[1]!["per_gpu_bytes"]!);
    }

    [Fact]
    public async Task Plan_json_gains_parallel_and_cpu_bytes_per_node()
    {
        var (code, stdout, _) = await Run("--model", "meta-llama/Llama-2-70b-hf", "--method", "lora", "--precision", "amp-bf16", "--batch", "8",
            "--checkpointing", "full", "--gpu", "h100", "--gpus", "8", "--zero", "3", "--json");
        Assert.Equal(CliApp.ExitOk, code);
        var json = JsonNode.Parse(stdout)!;
        Assert.Equal("afinado.plan/1", json["schema"]!.GetValue<string>());
        Assert.Equal("zero3", json["parallel"]!["sharding"]!.GetValue<string>());
        Assert.Equal(8, json["parallel"]!["data_parallel"]!.GetValue<int>());
        Assert.True(json["cpu_bytes_per_node"]!.GetValue<long>() > 0);
        var gpu = json["gpus"]![0]!;
        Assert.True(gpu["fits"]!.GetValue<bool>());
        // The 70B model does not fit one H100, its 8-GPU layout does: fits_any follows the layout, as the exit code does.
        Assert.True(json["fits_any"]!.GetValue<bool>());
        Assert.Equal(json["parallel"]!["gpu_peak_bytes"]!.GetValue<long>(), gpu["per_gpu_bytes"]!.GetValue<long>());
        Assert.Null(gpu["nvidia_smi_upper_bytes"]);   // no FSDP1 measurement applies to ZeRO-3
        Assert.Equal(8, gpu["gpus_requested"]!.GetValue<int>());
        Assert.Equal(8, gpu["gpus_used"]!.GetValue<int>());
        // Each line names its kind: the ZeRO-3 gathered parameters and the node's checkpoint load are found by it.
        var gpuKinds = json["parallel"]!["gpu_components"]!.AsArray().Select(c => c!["kind"]!.GetValue<string>()).ToList();
        Assert.Contains(nameof(LineKind.Zero3GatheredParameters), gpuKinds);
        Assert.Contains(nameof(LineKind.CheckpointLoad), json["parallel"]!["cpu_components"]!.AsArray().Select(c => c!["kind"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Fsdp1_plans_state_how_high_nvidia_smi_may_read()
    {
        var (code, stdout, stderr) = await Run("--model", "meta-llama/Llama-2-70b-hf", "--method", "qlora", "--weights-dtype", "nf4-dq",
            "--precision", "bf16", "--batch", "2", "--checkpointing", "full", "--gpu", "rtx4090", "--gpus", "2", "--fsdp", "full",
            "--offload", "params", "--json");
        Assert.Equal(CliApp.ExitOk, code);
        var gpu = JsonNode.Parse(stdout)!["gpus"]![0]!;
        Assert.True(gpu["nvidia_smi_upper_bytes"]!.GetValue<long>() > gpu["per_gpu_bytes"]!.GetValue<long>());
        Assert.Contains("nvidia-smi may read up to", stderr);
    }

    [Fact]
    public async Task Without_a_sharding_flag_the_plan_ranks_layouts_and_the_fewest_gpus_are_found()
    {
        var (code, stdout, _) = await Run("--model", "meta-llama/Llama-2-70b-hf", "--method", "full", "--precision", "amp-bf16",
            "--checkpointing", "full", "--gpu", "h100", "--gpus", "8", "--fewest-gpus", "--cpu-memory", "2TB", "--json");
        Assert.Equal(CliApp.ExitOk, code);
        var json = JsonNode.Parse(stdout)!;
        var alternatives = json["alternatives"]!.AsArray();
        Assert.True(alternatives.Count >= 5);
        Assert.True(alternatives[0]!["fits"]!.GetValue<bool>());
        Assert.True(json["gpu_search"]!["value"]!.GetValue<int>() >= 1);
    }

    [Fact]
    public async Task A_fewest_gpus_search_that_finds_no_count_says_so_and_names_the_floor()
    {
        // gpt-oss-20b LoRA with eager attention (its sinks have no SDPA) saves b·a·s² probabilities per layer: at 2048 tokens
        // the micro-batch's activations alone exceed a 24 GB card, and data parallelism does not shard them.
        var (code, stdout, stderr) = await Run("--model", "openai/gpt-oss-20b", "--method", "lora", "--gpu", "rtx4090", "--fewest-gpus", "--json");
        Assert.Equal(CliApp.ExitDoesNotFit, code);
        var search = JsonNode.Parse(stdout)!["gpu_search"]!;
        Assert.Null(search["value"]);
        Assert.Equal(1024, search["searched_up_to"]!.GetValue<int>());
        long floor = search["lowest_gpu_peak_bytes"]!.GetValue<long>();
        Assert.True(floor > GpuCatalog.Get("rtx4090").CapacityBytes);
        Assert.Equal(1024, search["lowest_layout"]!["gpus"]!.GetValue<int>());
        Assert.Contains("no count up to 1024 runs it", stderr);
        Assert.Contains("More GPUs do not lower it", stderr);
        // The single-GPU fixes above the layout tables do not send the user to the search already made.
        Assert.Contains("None of these fits one RTX 4090 24GB.", stderr);
    }

    [Theory]
    [InlineData("--fsdp-version", "2")]
    [InlineData("--sp", "true")]
    [InlineData("--fsdp-shard-embeddings", "true")]
    [InlineData("--fsdp-sharded-dtype", "fp32")]
    [InlineData("--gpus-per-node", "4")]
    public async Task A_layout_flag_the_single_gpu_plan_would_ignore_is_exit_2(string flag, string value)
    {
        var (code, stdout, err) = await Run("--gpu", "h100", flag, value);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.StartsWith($"error: {flag}:", err.Trim());
        Assert.Equal("", stdout);
    }

    [Theory]
    [InlineData("--gpus", "0")]
    [InlineData("--tp", "3")]
    [InlineData("--nodes", "3")]
    [InlineData("--fsdp-version", "3")]
    [InlineData("--fsdp-sharded-dtype", "nf4")]
    [InlineData("--fsdp-shard-embeddings", "true")]
    [InlineData("--quant-lib", "gptq")]
    [InlineData("--ep", "3")]
    [InlineData("--ep", "0")]
    public async Task Bad_layouts_on_plan_exit_2(string flag, string value)
    {
        var (code, stdout, err) = await Run("--gpu", "h100", "--gpus", "8", flag, value);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains(flag, err);
        Assert.Equal("", stdout); // the error comes alone, not after a single-GPU table
    }

    [Fact]
    public async Task Expert_parallelism_splits_the_routed_experts_and_the_export_writes_autoep()
    {
        string[] args = ["--model", "Qwen/Qwen3-30B-A3B", "--method", "lora", "--gpu", "h100", "--gpus", "8", "--zero", "2"];
        var (code, stdout, _) = await Run([.. args, "--ep", "8", "--json"]);
        Assert.Equal(CliApp.ExitOk, code);
        var parallel = JsonNode.Parse(stdout)!["parallel"]!;
        Assert.Equal(8, parallel["expert_parallel"]!.GetValue<int>());
        var kinds = parallel["gpu_components"]!.AsArray().Select(c => c!["kind"]!.GetValue<string>()).ToList();
        Assert.Contains(nameof(LineKind.ExpertAllToAllBuffers), kinds);
        var (without, plain, _) = await Run([.. args, "--json"]);
        Assert.Equal(CliApp.ExitDoesNotFit, without); // all 30.5B frozen weights on every GPU
        Assert.True(JsonNode.Parse(plain)!["parallel"]!["gpu_peak_bytes"]!.GetValue<long>() > parallel["gpu_peak_bytes"]!.GetValue<long>());

        var (o, e) = (new StringWriter(), new StringWriter());
        int exported = await CliApp.RunAsync(["export", "deepspeed", .. args, "--ep", "8"], o, e);
        Assert.Equal(CliApp.ExitOk, exported);
        Assert.Contains("\"autoep_size\": 8", o.ToString());
        Assert.Contains("\"preset_model\": \"qwen3_moe\"", o.ToString());
    }

    [Fact]
    public async Task Expert_parallelism_without_zero_1_or_2_names_the_fix()
    {
        var (code, _, err) = await Run("--model", "Qwen/Qwen3-30B-A3B", "--method", "lora", "--gpu", "h100", "--gpus", "8", "--ep", "4");
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("--ep", err);
        Assert.Contains("--zero 1 or --zero 2", err);
    }

    [Fact]
    public async Task A_layout_short_of_cpu_ram_says_so_instead_of_oom()
    {
        string[] args = ["--model", "meta-llama/Llama-3.1-70B", "--method", "qlora", "--checkpointing", "full", "--gpus", "2", "--fsdp", "full",
            "--offload", "params", "--gpu", "rtx4090", "--cpu-memory", "64GB"];
        var (code, stdout, _) = await Run(args);
        Assert.Equal(CliApp.ExitDoesNotFit, code);
        Assert.Contains("CPU RAM short", stdout);
        var (_, json, _) = await Run([.. args, "--json"]);
        var gpu = JsonNode.Parse(json)!["gpus"]![0]!;
        Assert.False(gpu["fits"]!.GetValue<bool>());
        Assert.True(gpu["fits_gpu_memory"]!.GetValue<bool>());
        Assert.False(gpu["fits_cpu_memory"]!.GetValue<bool>());
        Assert.Equal(64_000_000_000, gpu["cpu_limit_bytes_per_node"]!.GetValue<long>());
        // With enough RAM the same layout fits.
        var (ok, _, _) = await Run([.. args[..^2], "--cpu-memory", "128GB"]);
        Assert.Equal(CliApp.ExitOk, ok);
    }

    [Fact]
    public async Task A_layout_that_does_not_fit_exits_3()
    {
        var (code, _, _) = await Run("--model", "meta-llama/Llama-2-70b-hf", "--method", "full", "--precision", "amp-bf16", "--gpu", "rtx4090", "--gpus", "2", "--zero", "1");
        Assert.Equal(CliApp.ExitDoesNotFit, code);
    }
}
