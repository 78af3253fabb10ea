using Afinado.Planner;
using Afinado.Training.Data;
using Afinado.Training.Tokenization;

namespace Afinado.Training.Tests;

public class DataTests
{
    [Fact]
    public void English_fortunes_load_with_separable_categories()
    {
        var science = FortuneCorpus.Load(FortuneLanguage.English, "science");
        Assert.NotEmpty(science);
        Assert.All(science, d => { Assert.Equal("science", d.Category); Assert.Equal("en", d.Language); });
        Assert.DoesNotContain("off", FortuneCorpus.Categories(FortuneLanguage.English));
        Assert.Contains("literature", FortuneCorpus.Categories(FortuneLanguage.English));
    }

    [Fact]
    public void Spanish_fortunes_load_as_utf8()
    {
        var es = FortuneCorpus.Load(FortuneLanguage.Spanish);
        Assert.True(es.Count > 1000, $"only {es.Count} Spanish fortunes");
        Assert.Contains(es, d => d.Text.Contains('ó'));
        Assert.All(es, d => Assert.Equal("es", d.Language));
    }

    [Fact]
    public void Split_is_deterministic_disjoint_and_about_ten_percent()
    {
        var docs = FortuneCorpus.Load(FortuneLanguage.Spanish);
        var train = SplitAssigner.Select(docs, DataSplit.Train);
        var val = SplitAssigner.Select(docs, DataSplit.Validation);
        Assert.Equal(docs.Count, train.Count + val.Count);
        Assert.Empty(train.Select(d => d.Text).Intersect(val.Select(d => d.Text)));
        Assert.InRange(val.Count / (double)docs.Count, 0.07, 0.13);
        Assert.Equal(val.Select(d => d.Text), SplitAssigner.Select(FortuneCorpus.Load(FortuneLanguage.Spanish), DataSplit.Validation).Select(d => d.Text));
    }

    [Fact]
    public void Missing_package_names_the_apt_get_line()
    {
        var empty = Directory.CreateTempSubdirectory().FullName;
        var e = Assert.Throws<InputError>(() => FortuneCorpus.Load(FortuneLanguage.Spanish, root: empty));
        Assert.Contains("sudo apt-get install -y fortunes-es", e.Message);
        var e2 = Assert.Throws<InputError>(() => FashionMnist.Load(train: true, dir: empty));
        Assert.Contains("sudo apt-get install -y dataset-fashion-mnist", e2.Message);
    }

    [Fact]
    public void Tokenizers_round_trip()
    {
        const string text = "El niño comió — 3 €";
        foreach (var name in new[] { "byte", "gpt2" })
        {
            var tok = TextTokenizers.Create(name);
            var ids = tok.Encode(text);
            Assert.All(ids, i => Assert.InRange(i, 0, tok.VocabSize - 1));
            Assert.Equal(text, tok.Decode(ids));
        }
        Assert.Equal(15496, new Gpt2Tokenizer().Encode("Hello")[0]);
    }

    [Fact]
    public void Token_batches_depend_only_on_seed_step_and_micro()
    {
        var docs = FortuneCorpus.Load(FortuneLanguage.English, "science");
        var src = TokenStreamSource.FromDocuments(docs, new ByteTokenizer(), 32, "science", []);
        var (x1, y1) = src.TrainBatch(7, 3, 1, 4);
        var (x2, y2) = src.TrainBatch(7, 3, 1, 4);
        var (x3, _) = src.TrainBatch(7, 4, 1, 4);
        Assert.True(x1.Equals(x2) && y1.Equals(y2));
        Assert.False(x1.Equals(x3));
        Assert.True(x1.narrow(1, 1, 31).Equals(y1.narrow(1, 0, 31)), "targets are inputs shifted by one");
    }

    [Fact]
    public void User_jsonl_and_text_files_load()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        var jsonl = Path.Combine(dir, "mine.jsonl");
        File.WriteAllText(jsonl, "{\"text\":\"uno\"}\n{\"prompt\":\"Q: \",\"completion\":\"dos\"}\n");
        Assert.Equal(new[] { "uno", "Q: dos" }, UserTextFiles.Load(jsonl).Select(d => d.Text));
        var txt = Path.Combine(dir, "notes.txt");
        File.WriteAllText(txt, "first para\nline two\n\nsecond\n");
        Assert.Equal(new[] { "first para\nline two", "second" }, UserTextFiles.Load(txt).Select(d => d.Text));
        File.WriteAllText(jsonl, "{\"nope\":1}\n");
        Assert.Contains("mine.jsonl:1", Assert.Throws<InputError>(() => UserTextFiles.Load(jsonl)).Message);
    }

    [Fact]
    public void Fashion_mnist_test_set_loads()
    {
        var (x, y) = FashionMnist.Load(train: false);
        Assert.Equal(new long[] { 10000, 1, 28, 28 }, x.shape);
        Assert.Equal(new long[] { 10000 }, y.shape);
        Assert.Equal(9L, y.max().item<long>());
    }
}
