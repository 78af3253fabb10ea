using System.Text;

namespace Afinado.Cli.Tests;

/// <summary>
/// Issue 15 for <c>afinado train</c>: every reported hostile <c>--data</c> file and model-folder file is exit 2 with an
/// <c>error:</c> line naming the file (and line, and key), never an exception, a hang or unbounded memory.
/// </summary>
public sealed class HostileTrainInputTests : IDisposable
{
    private const string TinyConfig = """
        {"model_type":"llama","vocab_size":256,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":2,
         "num_key_value_heads":1,"intermediate_size":64,"max_position_embeddings":64}
        """;

    private readonly HostileFiles _files = new();

    public void Dispose() => _files.Dispose();

    private Task<(int Code, string Out, string Err)> Train(string model, string data) =>
        HostileFiles.RunGuarded("train", "--model", model, "--data", data, "--tokenizer", "byte", "--seq", "16", "--batch", "2",
            "--max-steps", "1", "--eval-every", "0", "--out", _files.Path($"run-{Guid.NewGuid():N}"));

    private Task<(int Code, string Out, string Err)> TrainOn(string data) => Train(_files.Text("config.json", TinyConfig), data);

    [Fact]
    public async Task Jsonl_with_a_lone_surrogate_escape_names_the_file_and_line()
    {
        var data = _files.Text("data.jsonl", "{\"text\":\"fine\"}\n{\"prompt\":\"a\\ud800\",\"completion\":\"x\"}\n");
        HostileFiles.AssertBadInput(await TrainOn(data), "data.jsonl:2", "$.prompt", "surrogate");
    }

    [Theory]
    [InlineData("{\"prompt\": 1, \"completion\": \"x\"}", "prompt", "number")]
    [InlineData("{\"prompt\": null, \"completion\": \"x\"}", "prompt", "null")]
    [InlineData("{\"prompt\": \"q\", \"completion\": [1]}", "completion", "array")]
    [InlineData("{\"text\": {\"a\": 1}}", "text", "object")]
    public async Task Jsonl_fields_that_are_not_strings_name_file_line_and_key(string line, string key, string found)
    {
        var data = _files.Text("typed.jsonl", "{\"text\":\"fine\"}\n\n" + line + "\n");
        HostileFiles.AssertBadInput(await TrainOn(data), $"typed.jsonl:3: {key}", "must be a string", found);
    }

    [Fact]
    public async Task Invalid_utf8_in_text_data_names_the_file_and_line()
    {
        var bytes = Encoding.UTF8.GetBytes("first doc\n\nsecond doc\n").Concat(new byte[] { 0x61, 0xC3, 0x28, 0x0A }).ToArray();
        var data = _files.Bytes("notes.txt", bytes);
        HostileFiles.AssertBadInput(await TrainOn(data), "notes.txt:4", "not valid UTF-8");
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    public async Task Data_linking_to_an_endless_device_is_refused_before_reading(string device)
    {
        var data = _files.LinkTo("corpus.txt", device);
        HostileFiles.AssertBadInput(await TrainOn(data), "corpus.txt", "character device");
    }

    [Fact]
    public async Task Data_that_is_a_fifo_is_refused_without_blocking()
    {
        var data = _files.Fifo("stream.jsonl");
        HostileFiles.AssertBadInput(await TrainOn(data), "stream.jsonl", "named pipe");
    }

    [Fact]
    public async Task Model_config_that_is_a_fifo_is_refused_without_blocking()
    {
        var model = _files.Fifo("config.json");
        HostileFiles.AssertBadInput(await Train(model, _files.Text("ok.txt", "some text\n")), "--model", "config.json", "named pipe");
    }

    [Fact]
    public async Task Index_with_a_lone_surrogate_names_the_index_and_key_path()
    {
        var folder = Directory.CreateDirectory(_files.Path("model")).FullName;
        File.WriteAllText(Path.Combine(folder, "config.json"), TinyConfig);
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
            "{\"weight_map\": {\"model.norm.weight\": \"shard\\udc00.safetensors\"}}");
        // Enough distinct documents for both splits, so the run gets as far as the weights.
        var data = _files.Text("ok.txt", string.Concat(Enumerable.Range(0, 300).Select(i => $"document {i}: plenty of ordinary training text here.\n\n")));
        HostileFiles.AssertBadInput(await Train(folder, data), "model.safetensors.index.json", "$.weight_map", "surrogate");
    }
}
