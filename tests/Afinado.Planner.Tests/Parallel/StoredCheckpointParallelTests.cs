using System.Text.Json.Nodes;
using Afinado.Planner.Allocator;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Planner.Selection;
using Afinado.Planner.Tests.Memory;

namespace Afinado.Planner.Tests.Parallel;

/// <summary>
/// A GPTQ/AWQ/bitsandbytes checkpoint in the multi-GPU ledger and in the allocator replay: the exact stored tensors the
/// single-GPU ledger counts, not the dtype class; GPTQ/AWQ buffers whole on every GPU, bitsandbytes codes sharded and its
/// constants whole.
/// </summary>
public class StoredCheckpointParallelTests
{
    private static ModelArchitecture WithQuantization(string catalogId, JsonObject quantization)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(catalogId))!.AsObject();
        node["quantization_config"] = quantization;
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    private static ModelArchitecture Awq() => WithQuantization("Qwen/Qwen3-8B", new JsonObject
    {
        ["bits"] = 4, ["group_size"] = 128, ["modules_to_not_convert"] = null, ["quant_method"] = "awq", ["version"] = "gemm", ["zero_point"] = true,
    });

    private static ModelArchitecture Bnb4() => WithQuantization("meta-llama/Llama-3.1-8B-Instruct", new JsonObject
    {
        ["quant_method"] = "bitsandbytes", ["load_in_4bit"] = true, ["load_in_8bit"] = false, ["bnb_4bit_quant_type"] = "nf4",
        ["bnb_4bit_use_double_quant"] = true, ["bnb_4bit_compute_dtype"] = "bfloat16", ["bnb_4bit_quant_storage"] = "uint8",
        ["llm_int8_skip_modules"] = null,
    });

    private static Job Lora => new() { Method = TrainingMethod.Lora, Lora = new LoraConfig(), Precision = Precision.Bf16, Checkpointing = Checkpointing.Full };

    private static Fit.Plan Single(ModelArchitecture a) => Fit.Planner.Create(a, Lora, [], suggestFixes: false);

    private static long Gpu(ParallelLedger l, LineKind kind) => l.Gpu.Where(e => e.Kind == kind).Sum(e => e.RoundedBytes);

    [Theory]
    [InlineData(Sharding.Zero3)]
    [InlineData(Sharding.FsdpFull)]
    public void Awq_buffers_are_the_stored_bytes_whole_on_every_gpu_under_zero3_and_fsdp(Sharding sharding)
    {
        var a = Awq();
        var single = Single(a);
        long stored = single.Ledger.Line(LineKind.WeightsFrozenQuantized).RoundedBytes;
        Assert.Equal(a.Quantization!.Stored(a).Bytes, stored);
        var ledger = ParallelMemory.Plan(PlanBridge.FromPlan(single), new ParallelLayout { Gpus = 4, Sharding = sharding }.Validate(a));
        // Not stored / 4: AutoAWQ registers qweight, qzeros and scales as buffers, which neither engine partitions.
        Assert.Equal(stored, Gpu(ledger, LineKind.WeightsFrozenQuantized), 2.0);
        var line = Assert.Single(ledger.Gpu, e => e.Kind == LineKind.WeightsFrozenQuantized);
        Assert.Contains("whole on every GPU", line.Name);
        Assert.Contains("register_buffer", line.Source);
        // FSDP's gathered layer holds no stored tensor: only the 16-bit norms (the LoRA factors are units of their own).
        if (sharding == Sharding.FsdpFull)
        {
            var gathered = Gpu(ledger, LineKind.FsdpGatheredLayers);
            Assert.True(gathered < 0.05 * stored / a.NumLayers, $"gathered {gathered:N0} B per unit");
        }
    }

    [Fact]
    public void Bitsandbytes_checkpoint_codes_are_sharded_and_its_constants_stay_whole_in_the_stored_bytes()
    {
        var a = Bnb4();
        var single = Single(a);
        long stored = single.Ledger.Line(LineKind.WeightsFrozenQuantized).RoundedBytes;
        var converted = a.Quantization!.Converted(a);
        long codes = converted.Sum(c => c.Tensors.Where(t => t.Suffix is "weight" or "bias").Sum(t => t.Bytes));
        var job = PlanBridge.FromPlan(single);
        var one = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 1 }.Validate(a));
        Assert.Equal(stored, Gpu(one, LineKind.WeightsFrozenQuantizedCodes) + Gpu(one, LineKind.QuantizationConstants), 2.0);
        var fsdp = ParallelMemory.Plan(job, new ParallelLayout { Gpus = 4, Sharding = Sharding.FsdpFull }.Validate(a));
        Assert.Equal(codes / 4.0, Gpu(fsdp, LineKind.WeightsFrozenQuantizedCodes), 2.0);
        Assert.Equal(stored - codes, Gpu(fsdp, LineKind.QuantizationConstants), 2.0);
    }

    [Fact]
    public void The_checkpoint_load_counts_the_stored_tensors()
    {
        var a = Awq();
        var single = Single(a);
        var ledger = ParallelMemory.Plan(PlanBridge.FromPlan(single), new ParallelLayout { Gpus = 2 }.Validate(a));
        long rest = a.ParameterCount - a.Quantization!.Converted(a).Sum(c => c.Elements);
        long expected = 2 * (a.Quantization.Stored(a).Bytes + rest * 2); // two processes on the node, each loads a copy
        Assert.Equal(expected, ledger.CpuPerNode.Single(e => e.Kind == LineKind.CheckpointLoad).RoundedBytes, 4.0);
    }

    [Fact]
    public void The_replay_allocates_the_stored_tensors_not_the_dtype_class()
    {
        var a = Awq();
        var job = Fit.Planner.ForCheckpoint(a, Lora);
        var profile = ModelProfile.Create(Fit.Planner.SelectionFor(a, job));
        long Built(Job j)
        {
            long bytes = 0;
            foreach (var e in StepTraces.For(profile, j).Events)
            {
                if (e.Kind == TraceEventKind.IterationStart) break;
                if (e.Kind == TraceEventKind.Allocate) bytes += e.Bytes;
            }
            return bytes;
        }
        var asClass = job with { WeightsDtype = job.ResolvedWeightsDtype };
        var converted = a.Quantization!.Converted(a);
        double classBytes = converted.Sum(c => Math.Ceiling(c.Linear.InFeatures * c.Linear.OutFeatures * asClass.ResolvedWeightsDtype.Bytes()));
        Assert.Equal(converted.Sum(c => c.Bytes) - classBytes, Built(job) - Built(asClass), 1.0);
    }
}
