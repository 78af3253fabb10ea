using Afinado.Planner;

namespace Afinado.Cli.Commands;

/// <summary>
/// Checks where a command will write before it starts working, so a wrong --out fails at once with a message naming
/// the flag instead of an IOException after minutes of training. Nothing is created: the check probes the nearest
/// existing folder with a temporary file and removes it.
/// </summary>
internal static class OutputPaths
{
    /// <summary><paramref name="path"/> must be a folder or not exist yet, under a folder this process can write in.</summary>
    public static void Folder(string flag, string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new InputError(flag, "is empty", "Give a folder path.");
        var full = Full(flag, path);
        if (System.IO.File.Exists(full))
            throw new InputError(flag, $"\"{path}\" is an existing file, not a folder", "Give a folder path (new or existing), or move the file away.");
        Writable(flag, path, full);
    }

    /// <summary>
    /// <paramref name="path"/> must not be a folder; its folder must be writable and, when the writer does not create
    /// folders (<paramref name="folderMustExist"/>), exist already.
    /// </summary>
    public static void File(string flag, string path, bool folderMustExist = true)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new InputError(flag, "is empty", "Give a file path.");
        var full = Full(flag, path);
        if (Directory.Exists(full)) throw new InputError(flag, $"\"{path}\" is a folder", "Give a file path, e.g. out/config.json.");
        var dir = Path.GetDirectoryName(full) ?? full;
        if (folderMustExist && !Directory.Exists(dir)) throw new InputError(flag, $"folder \"{dir}\" does not exist", "Create the folder first or write elsewhere.");
        Writable(flag, path, dir);
    }

    private static string Full(string flag, string path)
    {
        try { return Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new InputError(flag, $"\"{path}\" is not a usable path ({e.Message})", "Give a plain file-system path.");
        }
    }

    private static void Writable(string flag, string given, string full)
    {
        var existing = full;
        while (!Directory.Exists(existing))
        {
            if (System.IO.File.Exists(existing))
                throw new InputError(flag, $"\"{existing}\" in \"{given}\" is a file, so no folder can be made under it", "Give a path whose parents are folders.");
            existing = Path.GetDirectoryName(existing) ?? throw new InputError(flag, $"no part of \"{given}\" exists", "Give a path under an existing folder.");
        }
        var probe = Path.Combine(existing, $".afinado-write-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (System.IO.File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputError(flag, $"cannot write in \"{existing}\" ({e.Message})", "Choose a folder you can write to, or fix its permissions.");
        }
    }
}
