using System.Security.Cryptography;
using System.Text;

namespace Afinado.Training.Data;

/// <summary>
/// Deterministic train/validation split by content hash: a document goes to validation when the first 8 bytes of
/// SHA-256(text), read as an integer, fall in the lowest <c>fraction</c> of the range. The split is stable across
/// machines, file order and runs, and identical texts always land on the same side (no leakage via duplicates).
/// </summary>
public static class SplitAssigner
{
    public const double DefaultValidationFraction = 0.1;

    public static DataSplit Assign(string text, double validationFraction = DefaultValidationFraction) =>
        Position(text) < validationFraction ? DataSplit.Validation : DataSplit.Train;

    /// <summary>Where the text's SHA-256 falls in [0, 1): below the validation fraction means validation.</summary>
    public static double Position(string text)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        return BitConverter.ToUInt64(hash[..8]) / (double)ulong.MaxValue;
    }

    public static IReadOnlyList<TextDocument> Select(IEnumerable<TextDocument> docs, DataSplit split, double validationFraction = DefaultValidationFraction) =>
        docs.Where(d => Assign(d.Text, validationFraction) == split).ToList();
}
