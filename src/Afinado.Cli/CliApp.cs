using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
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
        root.Subcommands.Add(TokenizeCommand.Build());
        root.Subcommands.Add(GenerateCommand.Build());
        root.Subcommands.Add(ChatCommand.Build());
        root.Subcommands.Add(ServeCommand.Build());
        // System.CommandLine's own --version prints the entry assembly's version, which in-process (tests, hosts) is not
        // Afinado's; print the CLI assembly's instead. Same parsing: alone on the line, other tokens ignored.
        foreach (var option in root.Options.OfType<VersionOption>()) option.Action = new PrintVersionAction();
        return root;
    }

    /// <summary>
    /// What <c>afinado --version</c> prints: the package version (<c>Version</c> in Afinado.Cli.csproj, the one place it is
    /// set), then <c>+</c> and the git commit the SDK stamps into the informational version when the build ran in a git
    /// checkout. Both come from the build, so the same commit always prints the same line.
    /// </summary>
    public static string Version { get; } =
        typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(CliApp).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    private sealed class PrintVersionAction : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(Version);
            return ExitOk;
        }
    }

    public static Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null) =>
        RunAsync(BuildRoot(), args, stdout ?? Console.Out, stderr ?? Console.Error);

    /// <summary>Runs <paramref name="args"/> against <paramref name="root"/> with the CLI's error handling (tests pass their own command tree).</summary>
    internal static async Task<int> RunAsync(RootCommand root, string[] args, TextWriter stdout, TextWriter stderr)
    {
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) stderr.WriteLine($"error: {TerminalText.Escape(e.Message)}");
            stderr.WriteLine("Run `afinado --help` or `afinado <command> --help` for usage.");
            return ExitBadInput;
        }
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (InputError e)
        {
            stderr.WriteLine($"error: {TerminalText.Escape(e.Render(CliFlags.Of))}");
            return ExitBadInput;
        }
        catch (DoesNotFitError e)
        {
            stderr.WriteLine($"error: {TerminalText.Escape(e.Message)}.");
            if (e.Fixes.Count == 0) stderr.WriteLine("No single change the planner knows makes it fit; see `afinado plan --device cpu` for the breakdown.");
            else
            {
                stderr.WriteLine("Changes that fit (best first):");
                foreach (var fix in e.Fixes.Take(5)) stderr.WriteLine($"  {TerminalText.Escape(fix.Render(CliFlags.Of))}");
            }
            return ExitDoesNotFit;
        }
        catch (IOException e)
        {
            // The file system failed under us (disk full, folder removed, device error): not a bug in Afinado and not
            // bad input, so exit 1 with the system's message. Run folders are written atomically (AtomicFile, the
            // checkpoint store), so there the previous files stay valid.
            stderr.WriteLine($"error: {TerminalText.Escape(IoFailure.Describe(e))}");
            Debug(stderr, e);
            return ExitFailure;
        }
        catch (Exception e)
        {
            // Last resort, so a bug ends in one readable line and exit 1 instead of a runtime abort (exit 134) with a
            // stack trace; the causes themselves are fixed where they arise.
            stderr.WriteLine($"error: unexpected failure: {TerminalText.Escape(e.GetType().FullName)}: {TerminalText.Escape(e.Message)}");
            Debug(stderr, e);
            return ExitFailure;
        }
    }

    /// <summary>Set to 1 to get the stack trace of an unexpected failure on stderr.</summary>
    public const string DebugVariable = "AFINADO_DEBUG";

    private static void Debug(TextWriter stderr, Exception e)
    {
        if (Environment.GetEnvironmentVariable(DebugVariable) == "1") stderr.WriteLine(e.ToString());
    }
}
