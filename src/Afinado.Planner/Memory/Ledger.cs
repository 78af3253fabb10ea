namespace Afinado.Planner.Memory;

/// <summary>What a ledger line is, for grouping and for the fixes that act on it.</summary>
public enum Category { Weights, Gradients, OptimizerState, Activations, Logits, Temporary, KvCache, Runtime, Paged,
    /// <summary>Held in host (CPU) memory, not on the device: offloaded activations, a node's pinned buffers, checkpoint loading.</summary>
    Host }

/// <summary>
/// One line of any memory ledger (single-GPU, per GPU and per node of a parallel layout, a learning rule's): what it is
/// (<see cref="Kind"/>, the identity code looks lines up by), its display name, the moments it is live at, how many
/// bytes, the formula behind them and where the formula (or constant) comes from — a section of memory.md, a
/// framework's source, or a measurement.
/// </summary>
public sealed record LedgerEntry(LineKind Kind, string Name, Phase Phases, double Bytes, string Formula, string Source)
{
    public Category Category => Kind.CategoryOf();

    public long RoundedBytes => checked((long)Math.Ceiling(Bytes));
}
