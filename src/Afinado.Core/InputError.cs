namespace Afinado;

/// <summary>
/// Bad input from the user: a config field, a flag, a file. The message names the field and says how to fix it.
/// The CLI turns this into exit code 2 and a one-paragraph message, never a stack trace.
/// </summary>
public sealed class InputError : Exception
{
    public InputError(string field, string problem, string fix, Exception? inner = null)
        : base($"{field}: {problem}. {fix}", inner)
    {
        Field = field;
        Problem = problem;
        Fix = fix;
    }

    /// <summary>The config key, flag or file the problem is in (e.g. <c>config.json: num_attention_heads</c>, <c>--batch</c>).</summary>
    public string Field { get; }
    public string Problem { get; }
    public string Fix { get; }
}
