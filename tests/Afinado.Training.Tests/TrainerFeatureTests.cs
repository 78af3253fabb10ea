using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Training.Loop;
using Afinado.Training.Models;

namespace Afinado.Training.Tests;

/// <summary>Config features the trainer computes (Llama 3's rope_scaling) and those it refuses by name instead of
/// training a different network (Gemma's norms and scales, other RoPE scalings, sequences past a sliding window).</summary>
public class TrainerFeatureTests
{
    private static ModelArchitecture Edited(string json, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        edit(node);
        return TinyConfigs.Parse(node.ToJsonString());
    }

    [Fact]
    public async Task Llama3_rope_scaling_frequencies_equal_a_numpy_transcription_of_transformers()
    {
        // Llama 3.1's rope_scaling: factor 8, low 1, high 4, original 8192; θ 500,000; head_dim 128.
        var scaling = new RopeScaling("llama3", 8, 1, 4, 8192);
        var ours = Rotary.InverseFrequencies(128, 500000, scaling);
        // transformers modeling_rope_utils._compute_llama3_parameters, line by line in numpy.
        const string script = """
            import numpy as np, json
            base, dim, factor, low, high, old = 500000.0, 128, 8.0, 1.0, 4.0, 8192
            inv_freq = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float64) / dim))
            low_wavelen = old / low
            high_wavelen = old / high
            wavelen = 2 * np.pi / inv_freq
            inv_freq_llama = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
            smooth_factor = (old / wavelen - low) / (high - low)
            smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
            is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
            inv_freq_llama = np.where(is_medium, smoothed, inv_freq_llama)
            print(json.dumps([float(x) for x in inv_freq_llama]))
            """;
        // Debian's interpreter is the one python3-numpy installs into (a pyenv shim may come first on PATH).
        var psi = new ProcessStartInfo(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var python = Process.Start(psi)!;
        python.StandardInput.Write(script);
        python.StandardInput.Close();
        var output = python.StandardOutput.ReadToEndAsync();
        var error = python.StandardError.ReadToEndAsync();
        using (var guard = new CancellationTokenSource(TimeSpan.FromMinutes(5))) // a hang guard, not a deadline
            await python.WaitForExitAsync(guard.Token);
        Assert.True(python.ExitCode == 0, await error);
        var reference = JsonSerializer.Deserialize<double[]>(await output)!;
        Assert.Equal(reference.Length, ours.Length);
        for (int i = 0; i < ours.Length; i++) Assert.Equal(reference[i], ours[i], 1e-15);
        // The three bands are all present: unchanged, blended and divided by the factor.
        var plain = Rotary.InverseFrequencies(128, 500000, null);
        Assert.Equal(plain[0], ours[0]);
        Assert.Equal(plain[^1] / 8, ours[^1], 1e-20);
        Assert.Contains(Enumerable.Range(0, 64), i => ours[i] != plain[i] && ours[i] != plain[i] / 8);
    }

    [Fact]
    public void A_llama3_scaled_model_builds_and_other_scalings_are_refused_by_name()
    {
        using (new LlamaForCausalLM(Edited(TinyConfigs.Llama31Scaled, n => n["rope_scaling"] = new JsonObject
               { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192 }))) { }
        var yarn = Edited(TinyConfigs.Llama31Scaled, n => n["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 });
        var e = Assert.Throws<InputError>(() => new LlamaForCausalLM(yarn));
        Assert.Contains("rope_scaling", e.Message);
        Assert.Contains("yarn", e.Message);
    }

    [Theory]
    [InlineData("google/gemma-2b")]
    [InlineData("google/gemma-2-2b")]
    [InlineData("google/gemma-3-1b-it")]
    [InlineData("microsoft/Phi-3-mini-4k-instruct")]
    public void Gemma_and_phi3_models_build_with_the_planners_tensors(string id)
    {
        // Full size is not needed to check the layout: the catalog config at two layers and a small vocabulary.
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(id))!.AsObject();
        var text = node["text_config"] as JsonObject ?? node;
        text["num_hidden_layers"] = 2;
        text["vocab_size"] = 512;
        if (text["layer_types"] is JsonArray types) text["layer_types"] = new JsonArray(types.Take(2).Select(t => (JsonNode?)t!.GetValue<string>()).ToArray());
        var arch = TinyConfigs.Parse(text.ToJsonString());
        using var model = new LlamaForCausalLM(arch);
        Assert.Equal(arch.Tensors.Select(t => t.Name).Order(), model.named_parameters().Select(p => p.name).Order());
        Assert.Equal(arch.ParameterCount, model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Multimodal_gemma3_is_refused_with_the_text_model_as_the_fix()
    {
        var e = Assert.Throws<InputError>(() => new LlamaForCausalLM(ModelCatalog.Get("google/gemma-3-4b-it")));
        Assert.Contains("gemma3", e.Message);
        Assert.Contains("gemma3_text", e.Fix);
    }

    [Theory]
    [InlineData("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl")]
    [InlineData("Qwen/Qwen3-VL-4B-Instruct", "qwen3_vl")]
    [InlineData("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "mistral3")]
    [InlineData("meta-llama/Llama-4-Scout-17B-16E", "mixture-of-experts")]
    public void Families_the_trainer_does_not_build_are_refused_by_name(string id, string reason)
    {
        // Qwen2.5-VL passes the Llama-style checks (RMSNorm, RoPE, gated MLP) but holds a vision transformer and mrope.
        var e = Assert.Throws<InputError>(() => new LlamaForCausalLM(ModelCatalog.Get(id)));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Sequences_past_a_sliding_window_are_accepted_now_that_the_window_is_masked()
    {
        var mistral = Edited(TinyConfigs.Llama, n => { n["model_type"] = "mistral"; n["sliding_window"] = 16; });
        TrainConfigChecks.Validate(RunTests.TinyRun(1) with { SequenceLength = 32 }, mistral);
        var e = Assert.Throws<InputError>(() => TrainConfigChecks.Validate(RunTests.TinyRun(1) with { SequenceLength = 4096 }, mistral));
        Assert.Contains("max_position_embeddings", e.Message);
    }
}
