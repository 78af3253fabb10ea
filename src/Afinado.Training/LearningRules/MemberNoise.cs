using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// Per-member random streams. Each antithetic pair's noise is regenerated from a seed derived from (rule seed, step,
/// pair) instead of being stored, so a population costs O(parameters) memory, not O(population × parameters).
/// </summary>
public static class MemberNoise
{
    /// <summary>A well-mixed 64-bit seed for one pair of one step (SplitMix64 finaliser over the three inputs).</summary>
    public static ulong SeedFor(ulong ruleSeed, long step, int pair)
    {
        ulong z = ruleSeed ^ (0x9E3779B97F4A7C15UL * (ulong)(step + 1)) ^ (0xD1B54A32D192ED03UL * (ulong)(pair + 1));
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A fresh generator for one pair; drawing from it in the same order always yields the same numbers.</summary>
    public static Generator GeneratorFor(ulong ruleSeed, long step, int pair) => new(SeedFor(ruleSeed, step, pair));
}
