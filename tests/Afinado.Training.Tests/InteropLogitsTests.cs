using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Training.IO;
using Afinado.Training.Models;
using static TorchSharp.torch;
using Afinado.Planner.Memory;

namespace Afinado.Training.Tests;

/// <summary>
/// The TorchSharp model's logits equal an independent PyTorch reference forward of the same Hugging Face folder
/// (bench/interop/hf_reference.py on Debian's python3-torch 1.13, fp32) within 1e-4: Llama 3.1's llama3 rope_scaling
/// with grouped-query attention, Qwen2's q/k/v biases with a tied head, Qwen3's q/k norms over an explicit head_dim, and
/// Gemma 1, 2 and 3 text (norm offsets, embedding scale, GeGLU, four norms, soft-caps, sliding windows, local RoPE) and
/// Phi-3 (fused qkv and gate/up projections, partial rotary, a window on every layer).
/// </summary>
public sealed class InteropLogitsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-interop-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private const string Qwen3 = """
        {"model_type":"qwen3","vocab_size":320,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":2,"head_dim":24,"intermediate_size":96,"rms_norm_eps":1e-6,"rope_theta":1000000.0,
         "tie_word_embeddings":false,"max_position_embeddings":128}
        """;

    public static TheoryData<string, string> Configs() => new()
    {
        { "llama31", JsonNode.Parse(TinyConfigs.Llama31Scaled)!.AsObject() is var n && (n["rope_scaling"] = new JsonObject
            { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 16 }) is not null ? n.ToJsonString() : "" },
        { "qwen2", TinyConfigs.Qwen2Scaled },
        { "qwen3", Qwen3 },
    };

    public static TheoryData<string, string, AttentionKernel> GemmaConfigs() => new()
    {
        { "gemma", TinyConfigs.Gemma, AttentionKernel.Eager },
        { "gemma", TinyConfigs.Gemma, AttentionKernel.Sdpa },
        { "gemma2", TinyConfigs.Gemma2, AttentionKernel.Eager },
        { "gemma3_text", TinyConfigs.Gemma3Text, AttentionKernel.Eager },
        { "gemma3_text", TinyConfigs.Gemma3Text, AttentionKernel.Sdpa },
        { "phi3", TinyConfigs.Phi3, AttentionKernel.Sdpa },
        { "phi3", TinyConfigs.Phi3, AttentionKernel.Eager },
    };

    /// <summary>
    /// Gemma, Gemma 2, Gemma 3 text and Phi-3 (fused projections, partial rotation) against the reference over 24 tokens,
    /// three times the sliding window. Weights are
    /// drawn wide (σ 0.3) and every norm weight moved off zero, so the (1 + w) offsets, the soft-caps and the window all
    /// change the logits; SDPA runs the sliding layers with an explicit mask.
    /// </summary>
    [Theory]
    [MemberData(nameof(GemmaConfigs))]
    public async Task Gemma_and_phi3_logits_equal_a_pytorch_reference_forward_of_the_same_folder(string name, string config, AttentionKernel kernel)
    {
        var (arch, ours, reference) = await Compare($"{name}-{kernel}", config, kernel, seed: 29, idsSeed: 7, initStd: 0.3, offsetNorms: true);
        double worst = ours.Zip(reference, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst <= 1e-4, $"{name} ({kernel}): max |Δ logit| {worst:E2}");
        if (arch.FinalLogitSoftcap is { } cap) Assert.True(ours.Max() < cap && ours.Max() > 0.5 * cap, "the final soft-cap bites");
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public async Task Logits_equal_a_pytorch_reference_forward_of_the_same_folder(string name, string config)
    {
        var (_, ours, reference) = await Compare(name, config, AttentionKernel.Eager, seed: 17, idsSeed: 5, initStd: 0.02, offsetNorms: false);
        Assert.Equal(reference.Length, ours.Length);
        double worst = ours.Zip(reference, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst <= 1e-4, $"{name}: max |Δ logit| {worst:E2}");
    }

    /// <summary>Builds a folder from <paramref name="config"/> with seeded weights (norm weights moved off their start
    /// with <paramref name="offsetNorms"/>), and returns our logits over 24 seeded token ids beside the reference's.</summary>
    private async Task<(Afinado.Planner.Architecture.ModelArchitecture Arch, float[] Ours, float[] Reference)> Compare(
        string name, string config, AttentionKernel kernel, int seed, int idsSeed, double initStd, bool offsetNorms)
    {
        string folder = Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        manual_seed(seed);
        var arch = TinyConfigs.Parse(config);
        using var model = new LlamaForCausalLM(arch, kernel, initStd);
        if (offsetNorms)
            using (no_grad())
                foreach (var (n, p) in model.named_parameters())
                    if (n.EndsWith("norm.weight", StringComparison.Ordinal)) p.copy_(randn(p.shape) * 0.5);
        ModuleWeights.Save(model, Path.Combine(folder, "model.safetensors"));
        var rng = new Random(idsSeed);
        long[] ids = Enumerable.Range(0, 24).Select(_ => (long)rng.Next(arch.VocabSize)).ToArray();
        float[] ours;
        using (no_grad())
        using (var logits = model.call(tensor(ids).unsqueeze(0))[0])
            ours = logits.data<float>().ToArray();
        return (arch, ours, await Reference(folder, ids, null));
    }

    [Fact]
    public async Task A_lora_runs_peft_adapter_on_its_base_equals_its_merged_export()
    {
        string baseDir = Directory.CreateDirectory(Path.Combine(_dir, "base")).FullName;
        File.WriteAllText(Path.Combine(baseDir, "config.json"), TinyConfigs.Llama);
        manual_seed(23);
        using (var m = new LlamaForCausalLM(TinyConfigs.Parse(TinyConfigs.Llama)))
            ModuleWeights.Save(m, Path.Combine(baseDir, "model.safetensors"));
        string run = Path.Combine(_dir, "run");
        var summary = new Afinado.Training.Loop.LanguageModelRun(RunTests.TinyRun(4) with { BaseModel = baseDir, LoraDropout = 0, LearningRate = 3e-2 }, run)
            .Execute(new Afinado.Training.Loop.SilentProgress(), CancellationToken.None);
        Assert.Equal("completed", summary.Status);
        long[] ids = "El que no sabe"u8.ToArray().Select(b => (long)b).ToArray();
        float[] merged;
        using (var model = PretrainedModel.Load(Path.Combine(run, "model"), AttentionKernel.Eager))
        using (no_grad())
        using (var logits = model.call(tensor(ids).unsqueeze(0))[0])
            merged = logits.data<float>().ToArray();
        // PEFT's arithmetic on the base weights and the saved adapter (its names and adapter_config.json fields).
        var viaAdapter = await Reference(baseDir, ids, Path.Combine(run, "adapter"));
        var baseOnly = await Reference(baseDir, ids, null);
        Assert.True(merged.Zip(viaAdapter, (a, b) => Math.Abs(a - b)).Max() <= 1e-4);
        // The adapter moved the model: the merged logits are not the base's.
        Assert.True(merged.Zip(baseOnly, (a, b) => Math.Abs(a - b)).Max() > 1e-3);
    }

    private async Task<float[]> Reference(string folder, long[] ids, string? adapter)
    {
        string idsPath = Path.Combine(_dir, $"ids-{Guid.NewGuid():N}.json"), outPath = Path.Combine(_dir, $"ref-{Guid.NewGuid():N}.json");
        File.WriteAllText(idsPath, JsonSerializer.Serialize(ids));
        string script = Path.Combine(Afinado.TestSupport.NpmData.RepoRoot(), "bench", "interop", "hf_reference.py");
        var psi = new ProcessStartInfo(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, folder, idsPath, outPath }) psi.ArgumentList.Add(a);
        if (adapter is not null) psi.ArgumentList.Add(adapter);
        using var python = Process.Start(psi)!;
        var stderr = python.StandardError.ReadToEndAsync();
        using (var guard = new CancellationTokenSource(TimeSpan.FromMinutes(10))) // a hang guard, not a deadline
            await python.WaitForExitAsync(guard.Token);
        Assert.True(python.ExitCode == 0, await stderr);
        return JsonSerializer.Deserialize<float[][]>(File.ReadAllText(outPath))!.SelectMany(r => r).ToArray();
    }
}
