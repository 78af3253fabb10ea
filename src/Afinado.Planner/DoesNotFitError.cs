namespace Afinado.Planner;

/// <summary>
/// A job that the plan says cannot fit the memory it would run in (a GPU, or this machine's free RAM for a CPU run).
/// Refused before anything is allocated; the CLI turns it into exit 3 with the plan's fixes, never a native allocation
/// failure halfway through building the model.
/// </summary>
public sealed class DoesNotFitError(string message, IReadOnlyList<ParameterChange> fixes) : Exception(message)
{
    /// <summary>Changes that make the job fit, in the parameters of the library that refused it (best first).</summary>
    public IReadOnlyList<ParameterChange> Fixes { get; } = fixes;
}
