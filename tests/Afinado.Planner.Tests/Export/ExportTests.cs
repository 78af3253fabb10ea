using Afinado.Planner.Memory;
using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner.Export;
using Afinado.Planner.Parallel;
using YamlDotNet.Serialization;

namespace Afinado.Planner.Tests.Export;

public class ExportTests
{
    private static TrainingRun Run(ParallelLayout layout, int micro = 8, int accum = 4, RunPrecision precision = RunPrecision.AmpBf16, long hidden = 8192) => new()
    {
        Layout = layout.Validate(),
        DeepSpeed = DeepSpeedSettings.For(layout.ZeroStage, hidden),
        MicroBatch = micro,
        GradientAccumulation = accum,
        Precision = precision,
        ActivationCheckpointing = true,
        AdaptersOnly = true,
        Model = "meta-llama/Llama-2-70b-hf",
    };

    public static TheoryData<int, int, Sharding, Offload> DeepSpeedLayouts => new()
    {
        { 1, 1, Sharding.None, Offload.None },
        { 8, 1, Sharding.Zero1, Offload.None },
        { 8, 1, Sharding.Zero2, Offload.Optimizer },
        { 16, 2, Sharding.Zero3, Offload.None },
        { 8, 1, Sharding.Zero3, Offload.Params },
    };

    private static JsonObject ParseJson(string text) => JsonNode.Parse(text)!.AsObject();

    [Theory]
    [MemberData(nameof(DeepSpeedLayouts))]
    public void Deepspeed_json_parses_uses_documented_keys_and_agrees_with_the_plan(int gpus, int nodes, Sharding sharding, Offload offload)
    {
        var run = Run(new ParallelLayout { Gpus = gpus, Nodes = nodes, Sharding = sharding, Offload = offload });
        var file = DeepSpeedConfigWriter.Write(run);
        var json = ParseJson(file.Content);
        Assert.All(DeepSpeedConfigWriter.Flatten(json), k => Assert.Contains(k, KnownKeys.DeepSpeed));
        Assert.DoesNotContain("auto", file.Content);
        // train_batch_size = micro × accumulation × data-parallel degree
        Assert.Equal(8L * 4 * gpus, json["train_batch_size"]!.GetValue<long>());
        Assert.Equal(8, json["train_micro_batch_size_per_gpu"]!.GetValue<int>());
        Assert.Equal(4, json["gradient_accumulation_steps"]!.GetValue<int>());
        Assert.True(json["bf16"]!["enabled"]!.GetValue<bool>());
        Assert.False(json["fp16"]!["enabled"]!.GetValue<bool>());
        var zero = json["zero_optimization"]!.AsObject();
        Assert.Equal(run.Layout.ZeroStage, zero["stage"]!.GetValue<int>());
        Assert.Equal(offload != Offload.None, zero.ContainsKey("offload_optimizer"));
        Assert.Equal(offload == Offload.Params, zero.ContainsKey("offload_param"));
        if (run.Layout.ZeroStage == 3)
        {
            // The bucket sizes the ledger counted, not DeepSpeed's silent defaults.
            Assert.Equal(8192L * 8192, zero["reduce_bucket_size"]!.GetValue<long>());
            Assert.Equal((long)(0.9 * 8192 * 8192), zero["stage3_prefetch_bucket_size"]!.GetValue<long>());
            Assert.Equal(81_920L, zero["stage3_param_persistence_threshold"]!.GetValue<long>());
        }
        Assert.Contains(file.Assumptions, a => a.Contains($"= {8L * 4 * gpus}"));
    }

    [Fact]
    public void Fp16_plans_enable_fp16_with_dynamic_loss_scaling()
    {
        var json = ParseJson(DeepSpeedConfigWriter.Write(Run(new ParallelLayout { Gpus = 4, Sharding = Sharding.Zero2 }, precision: RunPrecision.AmpFp16)).Content);
        Assert.False(json["bf16"]!["enabled"]!.GetValue<bool>());
        Assert.True(json["fp16"]!["enabled"]!.GetValue<bool>());
        Assert.Equal(0, json["fp16"]!["loss_scale"]!.GetValue<int>());
    }

    private static Dictionary<string, object> ParseYaml(string text) =>
        new DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(text);

    private static IEnumerable<string> YamlKeys(Dictionary<string, object> doc) =>
        AccelerateConfigWriter.Flatten(doc.ToDictionary(kv => kv.Key, kv => kv.Value is Dictionary<object, object> d
            ? (object)d.ToDictionary(x => (string)x.Key, x => x.Value)
            : kv.Value));

    [Theory]
    [InlineData(8, 1, Sharding.Zero3, Offload.None, "DEEPSPEED")]
    [InlineData(16, 2, Sharding.Zero2, Offload.Optimizer, "DEEPSPEED")]
    [InlineData(2, 1, Sharding.FsdpFull, Offload.Params, "FSDP")]
    [InlineData(16, 2, Sharding.FsdpHybrid, Offload.None, "FSDP")]
    [InlineData(4, 1, Sharding.FsdpGradOp, Offload.None, "FSDP")]
    [InlineData(4, 1, Sharding.None, Offload.None, "MULTI_GPU")]
    public void Accelerate_yaml_parses_uses_documented_keys_and_agrees_with_the_plan(int gpus, int nodes, Sharding sharding, Offload offload, string type)
    {
        var run = Run(new ParallelLayout { Gpus = gpus, Nodes = nodes, Sharding = sharding, Offload = offload });
        var file = AccelerateConfigWriter.Write(run);
        var doc = ParseYaml(file.Content);
        Assert.All(YamlKeys(doc), k => Assert.Contains(k, KnownKeys.Accelerate));
        Assert.DoesNotContain("auto", file.Content.Split('\n').Where(l => !l.StartsWith('#')));
        Assert.Equal(type, doc["distributed_type"]);
        Assert.Equal(gpus.ToString(), doc["num_processes"]);
        Assert.Equal(nodes.ToString(), doc["num_machines"]);
        Assert.Equal(type == "DEEPSPEED" ? "no" : "bf16", doc["mixed_precision"]);
        Assert.Contains($"# Global batch = micro-batch 8 × accumulation 4 × data-parallel degree {gpus} = {32 * gpus}.", file.Content);
        if (type == "DEEPSPEED")
        {
            // Batch, precision, ZeRO stage, offload and buckets live in the DeepSpeed JSON the YAML points at.
            var ds = (Dictionary<object, object>)doc["deepspeed_config"];
            Assert.Equal(DeepSpeedConfigWriter.FileName(run.Layout), ds["deepspeed_config_file"]);
            Assert.Equal(run.Layout.ZeroStage == 3 ? "true" : "false", ds["zero3_init_flag"]);
            Assert.Equal(offload == Offload.None ? $"ds_zero{run.Layout.ZeroStage}.json" : $"ds_zero{run.Layout.ZeroStage}_offload_{offload.ToString().ToLowerInvariant()}.json", ds["deepspeed_config_file"]);
        }
        if (type == "FSDP")
        {
            var fsdp = (Dictionary<object, object>)doc["fsdp_config"];
            Assert.Equal(offload == Offload.Params ? "true" : "false", fsdp["fsdp_offload_params"]);
            Assert.Equal(sharding switch { Sharding.FsdpGradOp => "SHARD_GRAD_OP", Sharding.FsdpHybrid => "HYBRID_SHARD", _ => "FULL_SHARD" }, fsdp["fsdp_sharding_strategy"]);
            Assert.Equal("false", fsdp["fsdp_use_orig_params"]);
        }
        if (nodes > 1) Assert.Equal("127.0.0.1", doc["main_process_ip"]);
    }

    [Fact]
    public void Yaml_quotes_no_so_that_yaml_1_1_readers_do_not_turn_it_into_false()
    {
        var file = AccelerateConfigWriter.Write(Run(new ParallelLayout { Gpus = 2, Sharding = Sharding.FsdpFull, Offload = Offload.Params }, precision: RunPrecision.PureBf16));
        var lines = file.Content.Split('\n');
        Assert.Contains(lines, l => l is "mixed_precision: 'no'" or "mixed_precision: \"no\"");
        Assert.Contains(lines, l => l is "downcast_bf16: 'no'" or "downcast_bf16: \"no\"");
    }

    [Theory]
    [InlineData(1, Sharding.FsdpFull, Offload.Params, "--fsdp \"full_shard offload auto_wrap\"")]
    [InlineData(2, Sharding.FsdpHybrid, Offload.None, "--fsdp \"hybrid_shard auto_wrap\"")]
    [InlineData(1, Sharding.Zero3, Offload.None, "--deepspeed ds_zero3.json")]
    public void Torchrun_command_uses_documented_flags_and_the_plans_numbers(int nodes, Sharding sharding, Offload offload, string engineFlag)
    {
        var file = TorchrunCommandWriter.Write(Run(new ParallelLayout { Gpus = 8 * nodes, Nodes = nodes, Sharding = sharding, Offload = offload }));
        var command = string.Join(" ", file.Content.Split('\n').Where(l => !l.StartsWith('#'))).Replace("\\", "");
        Assert.StartsWith("torchrun ", command);
        Assert.All(command.Split(' ').Where(a => a.StartsWith("--")), f => Assert.Contains(f, KnownKeys.Torchrun));
        Assert.Contains("--nproc-per-node 8", command);
        Assert.Contains("--per_device_train_batch_size 8", command);
        Assert.Contains("--gradient_accumulation_steps 4", command);
        Assert.Contains("--bf16", command);
        Assert.Contains("--gradient_checkpointing", command);
        Assert.Contains(engineFlag, command);
        Assert.Contains(nodes == 1 ? "--standalone" : $"--nnodes {nodes}", command);
    }

    [Fact]
    public void Exports_refuse_what_the_engine_cannot_express()
    {
        Assert.Equal(LayoutParameters.TensorParallel, Assert.Throws<InputError>(() => DeepSpeedConfigWriter.Write(Run(new ParallelLayout { Gpus = 8, TensorParallel = 2 }))).Parameter);
        Assert.Equal(LayoutParameters.Fsdp, Assert.Throws<InputError>(() => DeepSpeedConfigWriter.Write(Run(new ParallelLayout { Gpus = 8, Sharding = Sharding.FsdpFull }))).Parameter);
        Assert.Equal(JobParameters.GradAccumulation, Assert.Throws<InputError>(() => AccelerateConfigWriter.Write(Run(new ParallelLayout { Gpus = 8 }, accum: 0))).Parameter);
    }

    [Fact]
    public void Known_key_lists_name_their_sources_and_are_not_empty()
    {
        Assert.True(KnownKeys.DeepSpeed.Count > 20);
        Assert.Contains("zero_optimization.offload_param.device", KnownKeys.DeepSpeed);
        Assert.Contains("fsdp_config.fsdp_sharding_strategy", KnownKeys.Accelerate);
        Assert.Contains("--nproc-per-node", KnownKeys.Torchrun);
        foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot(), "src/Afinado.Planner/Export/known-keys"), "*.txt"))
            Assert.Contains("Source", File.ReadAllText(f), StringComparison.OrdinalIgnoreCase);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Afinado.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
