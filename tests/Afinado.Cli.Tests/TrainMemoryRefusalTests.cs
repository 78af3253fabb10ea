namespace Afinado.Cli.Tests;

/// <summary>Issue 15: `train` of a model that does not fit in RAM ends with exit 3 before allocating (it used to die in
/// libtorch's allocator, although the run already knew its planned peak).</summary>
public class TrainMemoryRefusalTests
{
    [Fact]
    public async Task A_70B_full_finetune_on_the_cpu_is_refused_with_exit_3_and_no_run_folder()
    {
        var dir = Directory.CreateTempSubdirectory("afinado-ram-").FullName;
        try
        {
            // Llama-3.1-70B's shapes, random init: ~1 TB at the peak in fp32 with AdamW, more than any machine has free.
            var config = Path.Combine(dir, "config.json");
            File.WriteAllText(config, """
                {"model_type":"llama","vocab_size":128256,"hidden_size":8192,"num_hidden_layers":80,"num_attention_heads":64,
                 "num_key_value_heads":8,"intermediate_size":28672,"max_position_embeddings":4096}
                """);
            var text = Path.Combine(dir, "text.txt");
            File.WriteAllText(text, Fuzz.HostileCorpus.TinyText);
            var run = Path.Combine(dir, "run");
            var (code, _, err) = await CliRun.Run("train", "--model", config, "--data", text, "--tokenizer", "byte", "--seq", "8",
                "--max-steps", "1", "--method", "full", "--threads", "1", "--out", run);
            Assert.True(code == 3, err);
            Assert.Contains("MiB at its peak", err);
            Assert.DoesNotContain("unexpected failure", err);
            Assert.False(Directory.Exists(run));
        }
        finally { Directory.Delete(dir, true); }
    }
}
