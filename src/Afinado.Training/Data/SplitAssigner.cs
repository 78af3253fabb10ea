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

    public static DataSplit Assign(string text, double validationFraction = DefaultValidationFraction)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        ulong h = BitConverter.ToUInt64(hash[..8]);
        return h / (double)ulong.MaxValue < validationFraction ? DataSplit.Validation : DataSplit.Train;
    }

    public static IReadOnlyList<TextDocument> Select(IEnumerable<TextDocument> docs, DataSplit split, double validationFraction = DefaultValidationFraction) =>
        docs.Where(d => Assign(d.Text, validationFraction) == split).ToList();
}
