using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Afinado.Training.Loop;

namespace Afinado.Cli.Commands;

/// <summary>Runs a <see cref="LanguageModelRun"/> for the CLI: Ctrl-C/SIGTERM checkpoint and stop, progress on stderr, summary on stdout.</summary>
internal static class RunExecution
{
    public const int ExitInterrupted = 130;

    public static int Execute(ParseResult parse, LanguageModelRun run, bool json, string runDir)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        using var cts = new CancellationTokenSource();
        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true; // let the loop finish the step, checkpoint and return
            cts.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        bool interactive = ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
        var summary = ConsoleProgress.Run(error, interactive, "tok", CliFlags.Of, progress => run.Execute(progress, cts.Token));
        if (json) output.WriteLine(JsonSerializer.Serialize(summary, TrainConfig.Json));
        else
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{summary.Status}: {summary.Steps}/{summary.MaxSteps} steps in {summary.WallSeconds:F1} s; train loss {summary.FinalTrainLoss:F4}; validation loss {summary.InitialValidationLoss:F4} -> {summary.FinalValidationLoss:F4}"));
            foreach (var (name, v) in summary.ExtraValidation)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} validation loss {v.Before:F4} -> {v.After:F4}"));
            output.WriteLine($"trainable {summary.TrainableParameters:N0} of {summary.TotalParameters:N0} parameters; {LanguageModelRun.MemoryLine(summary.PlannedPeakBytes, summary.MeasuredPeakBytes)}");
            output.WriteLine($"run folder: {Show.Plain(runDir)}");
        }
        if (summary.Status == "diverged") error.WriteLine($"error: {Show.Plain(summary.Message)}");
        return summary.Status switch
        {
            "completed" => CliApp.ExitOk,
            "interrupted" => ExitInterrupted,
            _ => CliApp.ExitFailure,
        };
    }
}
