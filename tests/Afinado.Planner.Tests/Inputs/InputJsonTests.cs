using System.Text.Json;
using Afinado.Planner.Inputs;

namespace Afinado.Planner.Tests.Inputs;

/// <summary>Issue 15: JSON that System.Text.Json parses but that would crash a reader later is an input error up front.</summary>
public class InputJsonTests
{
    private static InputError Bad(string json) =>
        Assert.Throws<InputError>(() => InputJson.Parse(json, "c.json", InputKind.Config).Dispose());

    [Theory]
    [InlineData("""{"model_type":"llama\ud800"}""", "$.model_type")]
    [InlineData("""{"a":{"b":["x","\udfff"]}}""", "$.a.b[1]")]
    [InlineData("""{"k\ud800":1}""", "a key")]
    public void A_lone_surrogate_escape_names_its_key(string json, string where)
    {
        var e = Bad(json);
        Assert.Equal("c.json", e.Field);
        Assert.Contains(where, e.Message);
        Assert.Contains("surrogate", e.Message);
    }

    [Fact]
    public void A_surrogate_pair_escape_is_a_real_character() =>
        Assert.Equal("\U0001F600", InputJson.Parse("""{"s":"\ud83d\ude00"}""", "c.json", InputKind.Config).RootElement.GetProperty("s").GetString());

    [Fact]
    public void Duplicate_keys_are_refused_instead_of_the_last_one_winning() =>
        Assert.Contains("$.hidden_size: the key appears twice", Bad("""{"hidden_size":64,"hidden_size":4096}""").Message);

    [Theory]
    [InlineData("""{"x":1e400}""")]
    [InlineData("""{"x":-1e999}""")]
    public void Numbers_beyond_double_are_refused(string json) => Assert.Contains("out of range", Bad(json).Message);

    [Fact]
    public void Deep_nesting_is_refused()
    {
        string deep = new string('[', 200) + new string(']', 200);
        Assert.Contains("not valid JSON", Bad(deep).Message);
    }

    [Fact]
    public void Invalid_utf8_inside_a_string_is_refused_before_parsing()
    {
        byte[] bytes = [.. """{"a":"""u8, (byte)'"', 0xFF, (byte)'"', (byte)'}'];
        Assert.Contains("UTF-8", Assert.Throws<InputError>(() => InputJson.Parse(bytes, "c.json", InputKind.Config)).Message);
    }

    [Fact]
    public void Comments_and_trailing_commas_only_when_lenient()
    {
        const string json = "{\"a\": 1, // note\n}";
        Bad(json);
        Assert.Equal(1, InputJson.Parse(json, "c.json", InputKind.Config, lenient: true).RootElement.GetProperty("a").GetInt32());
    }

    private sealed record State(int Step, string Name);

    [Fact]
    public void Deserialize_names_the_file_and_the_path_of_a_wrong_type()
    {
        var dir = Directory.CreateTempSubdirectory("afinado-json-").FullName;
        try
        {
            var p = Path.Combine(dir, "state.json");
            File.WriteAllText(p, """{"Step":"five","Name":"x"}""");
            var e = Assert.Throws<InputError>(() => InputJson.Deserialize<State>(p, InputKind.RunFile, JsonSerializerOptions.Default));
            Assert.Equal(p, e.Field);
            Assert.Contains("$.Step", e.Message);
            File.WriteAllText(p, "null");
            Assert.Throws<InputError>(() => InputJson.Deserialize<State>(p, InputKind.RunFile, JsonSerializerOptions.Default));
            File.WriteAllText(p, """{"Step":5,"Name":"x"}""");
            Assert.Equal(new State(5, "x"), InputJson.Deserialize<State>(p, InputKind.RunFile, JsonSerializerOptions.Default));
        }
        finally { Directory.Delete(dir, true); }
    }
}
