namespace Afinado.Planner.Memory;

/// <summary>
/// The one peak algorithm of every ledger (single-GPU, per GPU and per node of a parallel layout, a learning rule's):
/// the bytes of the entries live at each moment are summed and the peak is the largest sum, the earliest of equal ones.
/// A moment no entry is live at is not part of the job (inference has no backward) and never holds the peak.
/// </summary>
public readonly record struct MemoryPeak(double Bytes, Phase Moment)
{
    /// <summary>The peak over the single-GPU ledger's moments.</summary>
    public static MemoryPeak Of(IReadOnlyList<LedgerEntry> entries) => Of(entries, Phases.Moments);

    public static MemoryPeak Of(IReadOnlyList<LedgerEntry> entries, ReadOnlySpan<Phase> moments)
    {
        // The fit search builds thousands of ledgers: sums stay on the stack.
        Span<double> sums = stackalloc double[moments.Length];
        Span<bool> any = stackalloc bool[moments.Length];
        foreach (var e in entries)
            for (int m = 0; m < moments.Length; m++)
                if ((e.Phases & moments[m]) != 0) { sums[m] += e.Bytes; any[m] = true; }
        double best = 0;
        var moment = Phase.None;
        for (int m = 0; m < sums.Length; m++)
            if (any[m] && (moment == Phase.None || sums[m] > best)) { best = sums[m]; moment = moments[m]; }
        return new MemoryPeak(best, moment);
    }

    /// <summary>Bytes of the entries live at <paramref name="moment"/>.</summary>
    public static double At(IEnumerable<LedgerEntry> entries, Phase moment) => entries.Where(e => (e.Phases & moment) != 0).Sum(e => e.Bytes);
}
