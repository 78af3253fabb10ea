using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;

namespace Afinado.Planner.Validation;

/// <summary>
/// A ground-truth row's <c>plan_args</c> (flags of <c>afinado plan</c>) read into planner inputs. Reading flags is the
/// CLI's job, so the caller of <see cref="GroundTruth"/> supplies the reader (<see cref="PlanArgsParser"/>) and the
/// planner never parses a command line. Parts are read on demand, in the order a prediction needs them: a row fails on
/// the first input the prediction touches, and flags its metric does not use (a <c>--gpu</c> on an allocated row) are
/// never checked.
/// </summary>
public interface IPlanArgs
{
    /// <summary><c>--model</c> as written: a catalog id, or a config path (looked up next to the CSV first).</summary>
    string Model { get; }

    Job Job();

    /// <summary>
    /// True when the row plans for the CPU (TorchSharp): only then are the devices passed to the plan, because the CPU
    /// ledger carries the CPU runtime entry and a GPU row's ledger does not depend on the card.
    /// </summary>
    bool OnCpu { get; }

    /// <summary>The devices as <c>afinado plan</c> takes them: in the order given, or the common GPUs when none is named.</summary>
    IReadOnlyList<Device> Devices();

    /// <summary>True when any multi-GPU flag was given: the row is then predicted per GPU of <see cref="Layout"/>.</summary>
    bool MultiGpu { get; }

    /// <summary>The layout as given (not yet validated against the model).</summary>
    ParallelLayout Layout();
}

/// <summary>
/// Reads one row's <c>plan_args</c>; <paramref name="where"/> (<c>file.csv:row-id</c>) names the row in an
/// <see cref="InputError"/> when they do not parse.
/// </summary>
public delegate IPlanArgs PlanArgsParser(string planArgs, string where);
