using System.Globalization;
using Spectre.Console;

namespace Afinado.Training.Loop;

/// <summary>
/// Progress on stderr: a Spectre.Console bar (loss, tokens/s, ETA) on a terminal; on a pipe or file, a plain line
/// every 5 % of the run and at every evaluation, so logs stay readable. Messages name parameters as
/// <c>parameterName</c> says (the CLI passes its flags).
/// </summary>
public static class ConsoleProgress
{
    public static T Run<T>(TextWriter err, bool interactive, string unit, Func<InputParameter, string> parameterName, Func<ITrainingProgress, T> body)
    {
        if (!interactive) return body(new LineProgress(err, unit, parameterName));
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(err) });
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => { result = body(new BarProgress(ctx.AddTask("train"), console, unit, parameterName)); });
        return result;
    }

    private sealed class BarProgress(ProgressTask task, IAnsiConsole console, string unit, Func<InputParameter, string> parameterName) : ITrainingProgress
    {
        private double? val;
        public void Begin(long firstStep, long totalSteps) { task.MaxValue = totalSteps; task.Value = firstStep; }
        public void Step(long step, double loss, double lr, double rate, TimeSpan eta)
        {
            task.Value = step;
            task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"step {step} loss {loss:F4}{(val is { } v ? $" val {v:F4}" : "")} lr {lr:0.0e0} {rate:F0} {unit}/s"));
        }
        public void Evaluated(long step, double validationLoss) => val = validationLoss;
        public void Message(InputText text) => console.MarkupLine(Markup.Escape(TerminalText.Escape(text.Render(parameterName), keepLayout: true)));
    }

    private sealed class LineProgress(TextWriter err, string unit, Func<InputParameter, string> parameterName) : ITrainingProgress
    {
        private long every = 1;
        public void Begin(long firstStep, long totalSteps) => every = Math.Max(1, totalSteps / 20);
        public void Step(long step, double loss, double lr, double rate, TimeSpan eta)
        {
            if (step % every == 0)
                err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step}: loss {loss:F4}, lr {lr:0.00e0}, {rate:F0} {unit}/s, ETA {eta:hh\\:mm\\:ss}"));
        }
        public void Evaluated(long step, double validationLoss) =>
            err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step}: validation loss {validationLoss:F4}"));
        // Messages echo paths and names from the user's files: control characters are spelled out.
        public void Message(InputText text) => err.WriteLine(TerminalText.Escape(text.Render(parameterName), keepLayout: true));
    }
}
