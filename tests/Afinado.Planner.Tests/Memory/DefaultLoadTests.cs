using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Fit;
using Afinado.Planner.Memory;
using Afinado.TestSupport;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// transformers ≥ 5 loads a model in its config's dtype by default (from_pretrained's dtype="auto", PR #42805). Gemma 2's
/// configs name float32, so the default load holds twice the weights a 16-bit inference plan assumes; the plan says so with
/// that load's total, and says nothing where the config names a 16-bit dtype or the job names its own.
/// </summary>
public class DefaultLoadTests
{
    private static Plan Infer(string model, Job? job = null) =>
        Planner.Fit.Planner.Create(ModelCatalog.Get(model), job ?? new Job { Task = JobTask.Infer, Seq = 512 }, [GpuCatalog.Get("l4")]);

    [Fact]
    public void A_float32_config_gets_the_default_loads_total()
    {
        var arch = ModelCatalog.Get("google/gemma-2-2b");
        Assert.Equal("float32", arch.ConfigDtype);
        var plan = Infer("google/gemma-2-2b");
        Assert.NotNull(plan.DefaultLoadNote);
        Assert.Contains("float32", plan.DefaultLoadNote!.ToString());
        // The default load's total is the same job planned in fp32: about twice the weights.
        var fp32 = Infer("google/gemma-2-2b", new Job { Task = JobTask.Infer, Seq = 512, Precision = Precision.Fp32 });
        Assert.Equal(fp32.Ledger.TotalBytes, plan.DefaultLoadTotalBytes);
        Assert.True(plan.DefaultLoadTotalBytes > plan.Ledger.TotalBytes + arch.ParameterCount * 3 / 2);
        var json = JsonNode.Parse(PlanJson.Serialize(plan))!;
        Assert.Equal(plan.DefaultLoadTotalBytes, (long?)json["default_load_total_bytes"]);
        Assert.Contains("precision fp32", (string?)json["default_load_note"]);
    }

    [Fact]
    public void A_config_without_a_dtype_points_at_the_checkpoint()
    {
        Assert.Null(ModelCatalog.Get("openai-community/gpt2").ConfigDtype);
        var plan = Infer("openai-community/gpt2");
        Assert.Contains("names no dtype", plan.DefaultLoadNote!.ToString());
        Assert.Null(plan.DefaultLoadTotalBytes);
    }

    [Theory]
    [InlineData("meta-llama/Llama-3.1-8B", null)]           // bfloat16 config: the plan is the default load
    [InlineData("meta-llama/Llama-2-7b-hf", null)]          // float16: the same bytes
    [InlineData("google/gemma-2-2b", "fp32")]               // the job names its precision
    [InlineData("google/gemma-2-2b", "training")]           // recipes name their dtype when they train
    public void No_note_where_the_plan_is_the_default_load(string model, string? change)
    {
        var job = new Job { Task = JobTask.Infer, Seq = 512 };
        if (change == "fp32") job = job with { Precision = Precision.Fp32 };
        if (change == "training") job = new Job { Seq = 512 };
        var plan = Infer(model, job);
        Assert.Null(plan.DefaultLoadNote);
        Assert.Null(plan.DefaultLoadTotalBytes);
    }

    [Fact]
    public void A_multimodal_config_names_its_dtype_in_text_config()
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson("google/gemma-3-4b-it"))!.AsObject();
        node.Remove("torch_dtype");
        node.Remove("dtype");
        node["text_config"]!["torch_dtype"] = "float32";
        Assert.Equal("float32", HfConfigReader.Parse(node.ToJsonString(), "config.json").ConfigDtype);
    }

    /// <summary>A config naming no dtype beside a checkpoint: transformers loads the checkpoint's one floating dtype, and
    /// the plan reads it from the headers (a float32 GPT-2 export gets the fp32 total; a bf16 one no note; mixed dtypes
    /// leave it to the reader).</summary>
    [Theory]
    [InlineData("F32", "F32", "the checkpoint beside it is float32")]
    [InlineData("BF16", "BF16", null)]
    [InlineData("F32", "BF16", "names no dtype, so")]
    public void A_checkpoint_beside_a_config_without_a_dtype_says_what_loads(string first, string second, string? note)
    {
        string dir = Directory.CreateTempSubdirectory("afinado-default-load-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), ModelCatalog.ConfigJson("openai-community/gpt2"));
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), [("h.0.attn.c_attn.weight", first, [8, 24]), ("wte.weight", second, [16, 8])]);
            var arch = ModelSource.Resolve(dir);
            var plan = Planner.Fit.Planner.Create(arch, new Job { Task = JobTask.Infer, Seq = 512 }, [GpuCatalog.Get("l4")]);
            if (note is null) Assert.Null(plan.DefaultLoadNote);
            else Assert.Contains(note, plan.DefaultLoadNote!.ToString());
            Assert.Equal(first == "F32" && second == "F32", plan.DefaultLoadTotalBytes is not null);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
