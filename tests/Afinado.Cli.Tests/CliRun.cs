namespace Afinado.Cli.Tests;

/// <summary>Runs the <c>afinado</c> command in-process and captures its exit code, stdout and stderr.</summary>
internal static class CliRun
{
    public static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = await CliApp.RunAsync(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
