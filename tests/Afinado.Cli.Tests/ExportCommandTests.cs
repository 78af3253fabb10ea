using System.Text.Json.Nodes;

namespace Afinado.Cli.Tests;

public class ExportCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = await CliApp.RunAsync(["export", .. args], o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task Deepspeed_export_prints_the_plans_config_and_ledger()
    {
        var (code, stdout, stderr) = await Run("deepspeed", "--method", "full", "--precision", "amp-bf16", "--gpus", "16", "--nodes", "2",
            "--zero", "3", "--batch", "2", "--grad-accum", "4", "--checkpointing", "full");
        Assert.Equal(CliApp.ExitOk, code);
        var json = JsonNode.Parse(stdout)!;
        Assert.Equal(2 * 4 * 16, json["train_batch_size"]!.GetValue<int>());
        Assert.Equal(3, json["zero_optimization"]!["stage"]!.GetValue<int>());
        Assert.Contains("per GPU (16 GPUs on 2 nodes, ZeRO-3, DP 16)", stderr);
        Assert.Contains("Global batch = micro-batch 2 × accumulation 4 × data-parallel degree 16 = 128.", stderr);
    }

    [Fact]
    public async Task Without_a_sharding_flag_the_least_communication_layout_that_fits_is_chosen()
    {
        // Llama-3.1-8B full finetuning (16 B/param ≈ 128 GB of states) on 8 × 32 GB: DDP, ZeRO-1 and ZeRO-2 (2P = 16 GB
        // of replicated weights + 18P/8) cannot hold it; ZeRO-3 (16P/8 + buckets + activations) can, without offload.
        var (code, stdout, stderr) = await Run("accelerate", "--method", "full", "--precision", "amp-bf16", "--gpus", "8",
            "--gpu-memory", "32GB", "--checkpointing", "full");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("layout chosen (least communication that fits", stderr);
        Assert.Contains("distributed_type: DEEPSPEED", stdout);
        Assert.Contains("deepspeed_config_file: ds_zero3.json", stdout);
    }

    [Fact]
    public async Task When_no_layout_fits_all_gpus_the_export_runs_on_fewer_and_says_why()
    {
        // Llama-2-70B QLoRA on 3 × 21 GB with 100 GiB of CPU RAM: unoffloaded FSDP needs more GPU memory, and offload
        // on 3 ranks pins more CPU RAM than on 2 (power-of-two pinned buffers per rank), so the command runs on 2 GPUs.
        var (code, stdout, stderr) = await Run("torchrun", "--model", "meta-llama/Llama-2-70b-hf", "--method", "qlora",
            "--weights-dtype", "nf4-dq", "--lora-rank", "8", "--lora-targets", "all-linear", "--precision", "bf16",
            "--batch", "1", "--seq", "2048", "--checkpointing", "full", "--gpu-memory", "21000MB", "--gpus", "3", "--cpu-memory", "100GiB");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("no layout fits on all 3 GPUs", stderr);
        Assert.Contains("--nproc-per-node 2", stdout);
        Assert.Contains("2 GPUs on 1 node, FSDP full-shard, DP 2, offload params to CPU", stdout);
    }

    [Fact]
    public async Task A_plan_that_does_not_fit_exits_3_and_writes_nothing()
    {
        var (code, stdout, stderr) = await Run("deepspeed", "--method", "full", "--precision", "amp-bf16", "--gpus", "2", "--zero", "1", "--gpu-memory", "24GB");
        Assert.Equal(CliApp.ExitDoesNotFit, code);
        Assert.Equal("", stdout);
        Assert.Contains("does not fit", stderr);
    }

    [Fact]
    public async Task A_gpu_without_the_jobs_kernel_exits_3_naming_the_kernel_and_writes_nothing()
    {
        var (code, stdout, stderr) = await Run("accelerate", "--attention", "flash", "--checkpointing", "full", "--gpus", "4", "--fsdp", "full", "--gpu", "v100-32gb");
        Assert.Equal(CliApp.ExitDoesNotFit, code);
        Assert.Equal("", stdout);
        Assert.Contains("V100 32GB cannot run this job: flash_attention_2", stderr);
        Assert.Contains("use --attention sdpa", stderr);
    }

    [Fact]
    public async Task Offload_that_needs_more_cpu_ram_than_given_exits_3()
    {
        var (code, _, stderr) = await Run("deepspeed", "--method", "full", "--precision", "amp-bf16", "--gpus", "2", "--zero", "3",
            "--offload", "params", "--cpu-memory", "64GB");
        Assert.Equal(CliApp.ExitDoesNotFit, code);
        Assert.Contains("--cpu-memory", stderr);
    }

    [Theory]
    [InlineData("--gpus", "0")]
    [InlineData("--tp", "3")]
    [InlineData("--nodes", "16")]
    [InlineData("--zero", "5")]
    [InlineData("--offload", "disk")]
    [InlineData("--cpu-memory", "lots")]
    [InlineData("--fsdp-version", "2")]
    [InlineData("--fsdp-shard-embeddings", "true")]
    public async Task Bad_layouts_are_input_errors_naming_the_flag(string flag, string value)
    {
        var (code, _, stderr) = await Run("deepspeed", "--gpus", "8", flag, value);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains(flag, stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public async Task Zero_and_fsdp_together_or_an_unknown_format_are_input_errors()
    {
        Assert.Equal(CliApp.ExitBadInput, (await Run("accelerate", "--gpus", "8", "--zero", "3", "--fsdp", "full")).Code);
        var (code, _, err) = await Run("slurm", "--gpus", "8");
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("deepspeed, accelerate or torchrun", err);
    }

    [Fact]
    public async Task Torchrun_fsdp_export_writes_the_file_and_its_notes()
    {
        var path = Path.Combine(Path.GetTempPath(), $"afinado-launch-{Guid.NewGuid():N}.sh");
        try
        {
            var (code, stdout, _) = await Run("torchrun", "--method", "qlora", "--gpus", "2", "--fsdp", "full", "--offload", "params", "--out", path);
            Assert.Equal(CliApp.ExitOk, code);
            Assert.Equal("", stdout);
            var text = File.ReadAllText(path);
            Assert.Contains("torchrun --standalone --nnodes 1 --nproc-per-node 2", text);
            Assert.Contains("--fsdp \"full_shard offload auto_wrap\"", text);
            var notes = File.ReadAllText(path + ".notes.txt");
            Assert.Contains("Global batch", notes);
            // FSDP1 + CPU offload: the notes carry the nvidia-smi bound the plan prints, with the published-run margin.
            Assert.Contains("nvidia-smi may read up to", notes);
            Assert.Contains("with CPU offload read up to 32 % above this estimate", notes);
        }
        finally
        {
            File.Delete(path);
            File.Delete(path + ".notes.txt");
        }
    }
}
