using System.Text;
using System.Text.Json;
using Afinado.Planner.Catalog;
using Afinado.TestSupport;

namespace Afinado.Cli.Tests;

public sealed class InspectCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("afinado-inspect-");

    public void Dispose() => _dir.Delete(true);

    private string PathOf(string name) => Path.Combine(_dir.FullName, name);

    private void WriteCheckpoint(string id, string? configId = null)
    {
        var arch = ModelCatalog.Get(id);
        SafetensorsWriter.Write(PathOf("model.safetensors"), arch.Tensors.Select(t => (t.Name, "BF16", t.Shape)), new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllText(PathOf("config.json"), ModelCatalog.ConfigJson(configId ?? id));
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task Folder_with_config_reports_totals_and_a_clean_cross_check()
    {
        WriteCheckpoint("EleutherAI/pythia-70m");
        var (code, output, err) = await Run("inspect", _dir.FullName);
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("BF16", output);
        Assert.Contains("70,426,624", output);
        Assert.Contains("OK: every tensor matches the config.", output);
        Assert.Equal("", err);
    }

    [Fact]
    public async Task Json_output_has_schema_dtypes_tensors_and_config_check()
    {
        WriteCheckpoint("Qwen/Qwen2.5-0.5B");
        var (code, output, _) = await Run("inspect", PathOf("model.safetensors"), "--json");
        Assert.Equal(CliApp.ExitOk, code);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal("afinado.inspect/1", root.GetProperty("schema").GetString());
        Assert.Equal(494_032_768L, root.GetProperty("elements").GetInt64());
        Assert.Equal(2 * 494_032_768L, root.GetProperty("bytes").GetInt64());
        var dtype = Assert.Single(root.GetProperty("dtypes").EnumerateArray());
        Assert.Equal("BF16", dtype.GetProperty("dtype").GetString());
        var embed = root.GetProperty("tensors").EnumerateArray().First(t => t.GetProperty("name").GetString() == "model.embed_tokens.weight");
        Assert.Equal([151936L, 896], embed.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var config = root.GetProperty("config");
        Assert.True(config.GetProperty("matches").GetBoolean());
        Assert.Equal("qwen2", config.GetProperty("model_type").GetString());
        Assert.Equal("pt", root.GetProperty("files")[0].GetProperty("metadata").GetProperty("format").GetString());
    }

    [Fact]
    public async Task Checkpoint_that_disagrees_with_its_config_exits_1_with_each_mismatch()
    {
        WriteCheckpoint("EleutherAI/pythia-70m", configId: "EleutherAI/pythia-160m");
        var (code, output, _) = await Run("inspect", _dir.FullName, "--json");
        Assert.Equal(CliApp.ExitFailure, code);
        var config = JsonDocument.Parse(output).RootElement.GetProperty("config");
        Assert.False(config.GetProperty("matches").GetBoolean());
        Assert.NotEmpty(config.GetProperty("missing").EnumerateArray());
        Assert.Contains(config.GetProperty("wrong_shape").EnumerateArray(), w => w.GetProperty("name").GetString() == "gpt_neox.embed_in.weight");

        var (textCode, text, _) = await Run("inspect", _dir.FullName);
        Assert.Equal(CliApp.ExitFailure, textCode);
        Assert.Contains("Wrong shape", text);
        Assert.Contains("MISMATCH", text);
    }

    [Fact]
    public async Task Explicit_config_may_be_a_catalog_id()
    {
        var arch = ModelCatalog.Get("openai-community/gpt2");
        SafetensorsWriter.Write(PathOf("gpt2.safetensors"), arch.Tensors.Select(t => (t.Name, "F32", t.Shape)));
        var (code, output, _) = await Run("inspect", PathOf("gpt2.safetensors"), "--config", "openai-community/gpt2", "--tensors");
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("transformer.h.0.attn.c_attn.weight", output);
        Assert.Contains("768, 2304", output);
    }

    [Fact]
    public async Task Without_a_config_only_the_header_is_reported()
    {
        SafetensorsWriter.Write(PathOf("x.safetensors"), [("w", "F16", [3, 5])]);
        var (code, output, _) = await Run("inspect", PathOf("x.safetensors"));
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("not cross-checked", output);
        var json = JsonDocument.Parse((await Run("inspect", PathOf("x.safetensors"), "--json")).Out).RootElement;
        Assert.Equal(JsonValueKind.Null, json.GetProperty("config").ValueKind);
    }

    [Theory]
    [InlineData(1_000UL, "declares a 1,000-byte header")]
    [InlineData(200_000_000UL, "over the 100,000,000-byte limit")]
    public async Task Hostile_header_lengths_exit_2_without_a_stack_trace(ulong declared, string message)
    {
        SafetensorsWriter.WriteRaw(PathOf("bad.safetensors"), declared, Encoding.UTF8.GetBytes("{}"), 0);
        var (code, output, err) = await Run("inspect", PathOf("bad.safetensors"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("bad.safetensors", err);
        Assert.Contains(message, err);
        Assert.DoesNotContain("   at ", err + output);
    }

    [Fact]
    public async Task Overlapping_offsets_exit_2()
    {
        const string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        SafetensorsWriter.WriteRaw(PathOf("overlap.safetensors"), (ulong)header.Length, Encoding.UTF8.GetBytes(header), 12);
        var (code, _, err) = await Run("inspect", PathOf("overlap.safetensors"));
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("overlaps", err);
    }

    [Fact]
    public async Task Missing_path_and_bad_config_exit_2()
    {
        Assert.Equal(CliApp.ExitBadInput, (await Run("inspect", PathOf("nothing-here"))).Code);
        SafetensorsWriter.Write(PathOf("model.safetensors"), [("w", "F16", [2])]);
        File.WriteAllText(PathOf("config.json"), "{\"model_type\": \"llama\", \"hidden_size\": -1}");
        var (code, _, err) = await Run("inspect", _dir.FullName);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("hidden_size", err);
    }

    [Fact]
    public async Task A_lone_shard_is_reported_without_a_misleading_cross_check()
    {
        File.WriteAllText(PathOf("config.json"), ModelCatalog.ConfigJson("EleutherAI/pythia-70m"));
        SafetensorsWriter.Write(PathOf("model-00001-of-00002.safetensors"), [("gpt_neox.embed_in.weight", "F16", [50304, 512])]);
        File.WriteAllText(PathOf("model.safetensors.index.json"), "{\"weight_map\": {\"gpt_neox.embed_in.weight\": \"model-00001-of-00002.safetensors\"}}");
        var (code, output, _) = await Run("inspect", PathOf("model-00001-of-00002.safetensors"));
        Assert.Equal(CliApp.ExitOk, code);
        Assert.Contains("one shard of model.safetensors.index.json", output);
    }

    [Fact]
    public async Task A_tensor_stored_with_and_without_the_base_prefix_is_reported_as_ambiguous()
    {
        // Both names land on model.norm.weight: a loader keeps whichever it reads last, so the checkpoint is not OK.
        var arch = ModelCatalog.Get("HuggingFaceTB/SmolLM2-135M");
        var norm = arch.Tensors.Single(t => t.Name == "model.norm.weight");
        SafetensorsWriter.Write(PathOf("model.safetensors"), arch.Tensors.Select(t => (t.Name, "BF16", t.Shape)).Append(("norm.weight", "BF16", norm.Shape)));
        File.WriteAllText(PathOf("config.json"), ModelCatalog.ConfigJson("HuggingFaceTB/SmolLM2-135M"));

        var (code, output, _) = await Run("inspect", _dir.FullName);
        Assert.Equal(CliApp.ExitFailure, code);
        Assert.Contains("model.norm.weight: model.norm.weight and norm.weight", output);
        Assert.DoesNotContain("OK:", output);

        var (jsonCode, json, _) = await Run("inspect", _dir.FullName, "--json");
        Assert.Equal(CliApp.ExitFailure, jsonCode);
        using var doc = JsonDocument.Parse(json);
        var config = doc.RootElement.GetProperty("config");
        Assert.False(config.GetProperty("matches").GetBoolean());
        var ambiguous = Assert.Single(config.GetProperty("ambiguous").EnumerateArray());
        Assert.Equal("model.norm.weight", ambiguous.GetProperty("name").GetString());
        Assert.Equal(["model.norm.weight", "norm.weight"], ambiguous.GetProperty("stored_as").EnumerateArray().Select(e => e.GetString()));
    }
}
