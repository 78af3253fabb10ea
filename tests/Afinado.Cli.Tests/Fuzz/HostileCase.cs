namespace Afinado.Cli.Tests.Fuzz;

/// <summary>
/// One hostile input: the command line (with <c>{dir}</c> standing for the case's own folder) and the files written
/// there before it runs. <paramref name="Prepare"/> builds anything bytes cannot say (a FIFO, links, a copied run folder).
/// </summary>
internal sealed record HostileCase(string Category, string Name, string[] Args, IReadOnlyDictionary<string, byte[]>? Files = null,
    Action<string>? Prepare = null)
{
    public string[] ArgsIn(string dir) => Args.Select(a => a.Replace("{dir}", dir, StringComparison.Ordinal)).ToArray();

    public override string ToString() => $"[{Category}] {Name}: afinado {string.Join(' ', Args.Select(Quote))}";

    private static string Quote(string a) => a.Length == 0 || a.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
        ? "'" + TerminalText.Escape(a) + "'" : a;
}
