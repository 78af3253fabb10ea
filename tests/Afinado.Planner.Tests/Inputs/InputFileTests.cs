using Afinado.Planner.Fit;
using System.Text;
using Afinado.Planner.Inputs;
using Mono.Unix.Native;

namespace Afinado.Planner.Tests.Inputs;

/// <summary>Issue 15: files we did not write are read only when they are regular files within their kind's limit.</summary>
public sealed class InputFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-input-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    [Fact]
    public void A_fifo_is_refused_without_opening_it()
    {
        // Opening a FIFO blocks until a writer appears: the check must come before the open, or this test hangs.
        var fifo = Path.Combine(_dir, "config.json");
        Assert.Equal(0, Syscall.mkfifo(fifo, FilePermissions.DEFFILEMODE));
        var e = Assert.Throws<InputError>(() => InputFile.ReadAllText(fifo, InputKind.Config));
        Assert.Contains("named pipe", e.Message);
        Assert.Contains(fifo, e.Message);
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    public void A_device_is_refused_directly_and_through_a_link(string device)
    {
        Assert.Contains("character device", Assert.Throws<InputError>(() => InputFile.ReadAllBytes(device, InputKind.Config)).Message);
        var link = Path.Combine(_dir, "config.json");
        File.CreateSymbolicLink(link, device);
        Assert.Contains("character device", Assert.Throws<InputError>(() => InputFile.ReadAllBytes(link, InputKind.Config)).Message);
        Assert.Contains("character device", Assert.Throws<InputError>(() => InputFile.ReadLines(link, InputKind.Data).ToList()).Message);
    }

    [Fact]
    public void A_link_loop_a_dangling_link_and_a_folder_are_input_errors()
    {
        string a = Path.Combine(_dir, "a"), b = Path.Combine(_dir, "b");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);
        Assert.Contains("does not exist", Assert.Throws<InputError>(() => InputFile.Check(a, InputKind.Config)).Message);
        File.CreateSymbolicLink(Path.Combine(_dir, "dangling"), Path.Combine(_dir, "nowhere"));
        Assert.Contains("does not exist", Assert.Throws<InputError>(() => InputFile.Check(Path.Combine(_dir, "dangling"), InputKind.Config)).Message);
        Assert.Contains("is a folder", Assert.Throws<InputError>(() => InputFile.Check(_dir, InputKind.Config)).Message);
    }

    [Fact]
    public void A_link_to_a_regular_file_is_read()
    {
        var target = Write("real.json", "{}");
        var link = Path.Combine(_dir, "config.json");
        File.CreateSymbolicLink(link, target);
        Assert.Equal("{}", InputFile.ReadAllText(link, InputKind.Config));
    }

    [Fact]
    public void A_file_over_its_kinds_limit_is_refused_before_it_is_read_and_the_field_is_named()
    {
        var big = Path.Combine(_dir, "config.json");
        using (var f = File.Create(big)) f.SetLength(InputKind.Config.MaxBytes!.Value + 1);
        var e = Assert.Throws<InputError>(() => InputFile.ReadAllBytes(big, InputKind.Config, PlanParameters.Model));
        Assert.Equal(PlanParameters.Model, e.Parameter);
        Assert.Contains("16,777,216", e.Message);
    }

    [Fact]
    public void Text_must_be_utf8_and_says_where_it_is_not()
    {
        var p = Path.Combine(_dir, "t.txt");
        File.WriteAllBytes(p, [(byte)'o', (byte)'k', 0xC3, 0x28]);
        Assert.Contains("offset 2", Assert.Throws<InputError>(() => InputFile.ReadAllText(p, InputKind.Config)).Message);
        File.WriteAllBytes(p, [0xEF, 0xBB, 0xBF, (byte)'h', (byte)'i']);
        Assert.Equal("hi", InputFile.ReadAllText(p, InputKind.Config));
    }

    [Fact]
    public void Lines_are_streamed_with_numbers_crlf_and_a_limit_per_line()
    {
        var p = Write("d.txt", "uno\r\ndos\n\ntres");
        Assert.Equal([(1, "uno"), (2, "dos"), (3, ""), (4, "tres")], InputFile.ReadLines(p, InputKind.Data).ToList());
        var kind = InputKind.Data with { MaxLineBytes = 8 };
        var q = Write("e.txt", "short\nthis line is too long\n");
        var e = Assert.Throws<InputError>(() => InputFile.ReadLines(q, kind).ToList());
        Assert.EndsWith(":2", e.Field);
        var bad = Path.Combine(_dir, "bad.txt");
        File.WriteAllBytes(bad, [.. "a\n"u8, 0xFF, (byte)'\n']);
        Assert.EndsWith(":2", Assert.Throws<InputError>(() => InputFile.ReadLines(bad, InputKind.Data).ToList()).Field);
    }

    [Fact]
    public void Paths_with_control_characters_are_shown_escaped()
    {
        var e = Assert.Throws<InputError>(() => InputFile.Check(Path.Combine(_dir, "x\u001b[31my"), InputKind.Config));
        Assert.DoesNotContain("\u001b", e.Message);
        Assert.Contains("\\x1b[31m", e.Message);
    }

    [Fact]
    public void Utf8_text_is_checked_whole_even_when_short() =>
        Assert.Throws<InputError>(() => InputFile.DecodeUtf8(Encoding.Latin1.GetBytes("caf\u00e9"), "x", InputKind.Data));
}
