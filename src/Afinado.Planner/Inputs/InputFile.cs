using System.Text;
using Mono.Unix;

namespace Afinado.Planner.Inputs;

/// <summary>
/// The one way to read a file Afinado did not write. Only regular files are opened (a FIFO would block forever, a
/// device such as <c>/dev/zero</c> never ends, a socket is not a file): the type is taken with stat(2), following
/// links, before anything is opened. Sizes are checked against the <see cref="InputKind"/>'s limit before reading, text
/// must be valid UTF-8, and every failure is an <see cref="InputError"/> naming the path (or the field that gave it).
/// </summary>
public static class InputFile
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The file's size after checking that it is a regular file within the kind's limit.</summary>
    public static long Check(string path, InputKind kind, InputText? field = null)
    {
        InputText name = field ?? Describe(path);
        // The message names the path once: as its field, or after the flag that gave it.
        string subject = field is null ? "" : Describe(path) + " ";
        FileTypes type;
        long size;
        try
        {
            var info = new UnixFileInfo(path);
            type = info.FileType;
            size = info.Length;
        }
        catch (InvalidOperationException)
        {
            // Mono.Unix reports a missing path, a dangling link and a link loop alike ("Path doesn't exist").
            throw new InputError(name, $"{subject}does not exist (or is a link that leads nowhere)", $"Check the path. {kind.Fix}");
        }
        catch (Exception e) when (e is UnixIOException or UnauthorizedAccessException or IOException or ArgumentException)
        {
            throw new InputError(name, $"{subject}cannot be examined ({TerminalText.Escape(e.Message)})", "Check the path and its permissions.", e);
        }
        if (type == FileTypes.Directory)
            throw new InputError(name, $"{subject}is a folder, not a {kind.Name}", kind.Fix);
        if (type != FileTypes.RegularFile)
            throw new InputError(name, $"{subject}is a {TypeName(type)}, not a regular file", $"Copy the {kind.Name} to a regular file first. {kind.Fix}");
        if (kind.MaxBytes is { } max && size > max)
            throw new InputError(name, $"{subject}is {size:N0} bytes, more than the {max:N0} a {kind.Name} may have", kind.Fix);
        return size;
    }

    /// <summary>Opens a checked regular file for reading.</summary>
    public static FileStream Open(string path, InputKind kind, InputText? field = null)
    {
        Check(path, kind, field);
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputError(field ?? Describe(path), $"cannot be read ({TerminalText.Escape(e.Message)})", "Check the path and its permissions.", e);
        }
    }

    public static byte[] ReadAllBytes(string path, InputKind kind, InputText? field = null)
    {
        using var stream = Open(path, kind, field);
        // Read what is there, never more than the limit, even if the file grew after it was checked.
        long cap = kind.MaxBytes ?? Array.MaxLength;
        using var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        try
        {
            while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                if (buffer.Length + n > cap)
                    throw new InputError(field ?? Describe(path), $"grew past the {cap:N0} bytes a {kind.Name} may have while it was read", kind.Fix);
                buffer.Write(chunk, 0, n);
            }
        }
        catch (IOException e)
        {
            throw new InputError(field ?? Describe(path), $"cannot be read ({TerminalText.Escape(e.Message)})", "Check the file and the disk.", e);
        }
        return buffer.ToArray();
    }

    /// <summary>The whole file as strict UTF-8 text (a leading byte-order mark is dropped).</summary>
    public static string ReadAllText(string path, InputKind kind, InputText? field = null) =>
        DecodeUtf8(ReadAllBytes(path, kind, field), field ?? Describe(path), kind);

    /// <summary>The file's lines, streamed: each must be valid UTF-8 and at most the kind's line limit.</summary>
    public static IEnumerable<(int Number, string Text)> ReadLines(string path, InputKind kind, InputText? field = null)
    {
        InputText name = field ?? Describe(path);
        using var stream = Open(path, kind, field);
        var line = new MemoryStream();
        var chunk = new byte[1 << 16];
        int number = 0, n;
        while ((n = Read(stream, chunk, name)) > 0)
        {
            int start = 0;
            for (int i = 0; i < n; i++)
            {
                if (chunk[i] != (byte)'\n') continue;
                Append(line, chunk, start, i - start, name, number + 1, kind);
                start = i + 1;
                yield return (++number, Line(line, name, number, kind));
            }
            Append(line, chunk, start, n - start, name, number + 1, kind);
        }
        if (line.Length > 0) yield return (++number, Line(line, name, number, kind));
    }

    /// <summary>Strict UTF-8 decoding; an invalid sequence is an input error naming the byte offset.</summary>
    public static string DecodeUtf8(ReadOnlySpan<byte> bytes, InputText name, InputKind kind)
    {
        if (bytes.StartsWith("\uFEFF"u8)) bytes = bytes[3..];
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException e)
        {
            throw new InputError(name, $"is not valid UTF-8 (bad bytes at offset {e.Index:N0})", $"Save the {kind.Name} as UTF-8. {kind.Fix}", e);
        }
    }

    /// <summary>A path as messages show it: control characters escaped, so a hostile name cannot drive the terminal.</summary>
    public static string Describe(string path) => TerminalText.Escape(path);

    private static int Read(Stream s, byte[] buffer, InputText name)
    {
        try { return s.Read(buffer, 0, buffer.Length); }
        catch (IOException e) { throw new InputError(name, $"cannot be read ({TerminalText.Escape(e.Message)})", "Check the file and the disk.", e); }
    }

    private static void Append(MemoryStream line, byte[] chunk, int start, int count, InputText name, int number, InputKind kind)
    {
        if (line.Length + count > kind.MaxLineBytes)
            throw new InputError($"{name}:{number}", $"the line is longer than the {kind.MaxLineBytes:N0} bytes a {kind.Name} line may have", $"Split the record. {kind.Fix}");
        line.Write(chunk, start, count);
    }

    private static string Line(MemoryStream line, InputText name, int number, InputKind kind)
    {
        var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        string text = DecodeUtf8(bytes, $"{name}:{number}", kind);
        line.SetLength(0);
        return text;
    }

    private static string TypeName(FileTypes type) => type switch
    {
        FileTypes.Fifo => "named pipe (FIFO)",
        FileTypes.Socket => "socket",
        FileTypes.CharacterDevice => "character device",
        FileTypes.BlockDevice => "block device",
        FileTypes.SymbolicLink => "symbolic link",
        _ => type.ToString(),
    };
}
