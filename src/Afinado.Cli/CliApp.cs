using System.CommandLine;
using Afinado.Cli.Commands;
using Afinado.Planner;

namespace Afinado.Cli;

/// <summary>
/// The <c>afinado</c> command tree. Each command lives in its own file under Commands/ and is a thin adapter over one
/// library call. Exit codes: 0 ok, 1 unexpected failure, 2 bad input, 3 the plan does not fit.
/// </summary>
public static class CliApp
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitBadInput = 2;
    public const int ExitDoesNotFit = 3;

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Afinado: will it fit, finetune it, was it worth it.");
        root.Subcommands.Add(PlanCommand.Build());
        root.Subcommands.Add(InspectCommand.Build());
        root.Subcommands.Add(ValidateCommand.Build());
        root.Subcommands.Add(ExportCommand.Build());
        root.Subcommands.Add(TrainCommand.Build());
        root.Subcommands.Add(PretrainCommand.Build());
        root.Subcommands.Add(EvalCommand.Build());
        root.Subcommands.Add(CalibrationCommand.Build());
        root.Subcommands.Add(ReportCommand.Build());
        root.Subcommands.Add(BenchCommand.Build());
        return root;
    }

    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var root = BuildRoot();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) stderr.WriteLine($"error: {e.Message}");
            stderr.WriteLine("Run `afinado --help` or `afinado <command> --help` for usage.");
            return ExitBadInput;
        }
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (InputError e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitBadInput;
        }
    }
}
