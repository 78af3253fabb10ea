using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules;

/// <summary>
/// The perturbation of one parameter for a chunk of C antithetic pairs, already scaled by σ. A matrix W [out, in] gets
/// the low-rank factors <see cref="A"/> [C, out, r] (carrying σ/√r) and <see cref="B"/> [C, in, r], so ε_i = A_i·B_iᵀ;
/// any other parameter (bias, norm gain) gets dense Gaussian noise <see cref="Z"/> [C, numel].
/// </summary>
public sealed record StackedPerturbation(Tensor? A, Tensor? B, Tensor? Z)
{
    public bool IsLowRank => A is not null;
}

/// <summary>
/// Low-rank ES noise (EGGROLL, Sarkar et al. 2025, "Evolution Strategies at the Hyperscale", arXiv:2511.16652): a weight
/// matrix W [out, in] is perturbed by ε = σ·A·Bᵀ/√r with A [out, r], B [in, r] standard normal. Every element of ε still
/// has variance σ² and E[vec ε·vec εᵀ] = σ²I, so the antithetic estimate keeps its expectation; what changes is the cost of
/// a member's forward pass: x·(W + ε)ᵀ = x·Wᵀ + ((x·B)·Aᵀ)σ/√r shares x·Wᵀ across the population and adds only
/// O(r·(in + out)) work per member, so the same compute evaluates a population tens of times larger.
/// Parameters with fewer than two dimensions get dense noise σ·z. Tensors with more than two dimensions (conv kernels)
/// are treated as [shape[0], rest]. Each pair draws, parameter by parameter in order, A then B (or z) from its own
/// generator, so any pair's noise can be regenerated alone.
/// </summary>
public sealed class LowRankNoise
{
    private readonly (long Rows, long Cols, bool LowRank)[] _shapes;

    public LowRankNoise(IReadOnlyList<Parameter> parameters, int rank)
    {
        if (rank < 1) throw new ArgumentOutOfRangeException(nameof(rank), "low-rank noise needs rank ≥ 1");
        Rank = rank;
        _shapes = parameters.Select(p => p.dim() >= 2 ? (p.shape[0], p.numel() / p.shape[0], true) : (p.numel(), 1L, false)).ToArray();
    }

    public int Rank { get; }

    /// <summary>Length of one pair's draw: r·(rows + cols) per matrix, rows per vector, in parameter order.</summary>
    public long DrawLength => _shapes.Sum(x => x.LowRank ? Rank * (x.Rows + x.Cols) : x.Rows);

    /// <summary>One pair's noise in the flat layout of the trainable parameters: ε = σ·A·Bᵀ/√r per matrix, σ·z otherwise.</summary>
    public void WriteDense(Generator gen, double sigma, Tensor into)
    {
        using var scope = NewDisposeScope();
        var draw = empty(DrawLength, dtype: into.dtype).normal_(0, 1, gen);
        long off = 0, at = 0;
        double scale = sigma / Math.Sqrt(Rank);
        foreach (var (rows, cols, lowRank) in _shapes)
        {
            var slice = into.narrow(0, off, rows * cols);
            if (lowRank)
            {
                var a = draw.narrow(0, at, rows * Rank).view(rows, Rank);
                var b = draw.narrow(0, at + rows * Rank, cols * Rank).view(cols, Rank);
                slice.view(rows, cols).addmm_(a, b.t(), beta: 0).mul_(scale);     // written in place: no [rows, cols] temporary
                at += Rank * (rows + cols);
            }
            else
            {
                slice.copy_(draw.narrow(0, at, rows)).mul_(sigma);
                at += rows;
            }
            off += rows * cols;
        }
    }

    /// <summary>
    /// The noise of pairs <paramref name="generators"/>[0..C), the same numbers <see cref="WriteDense"/> draws: one [C, L] draw
    /// (a row per pair, one call per pair), seen per parameter as A [C, rows, r] (scaled by σ/√r), B [C, cols, r] or σ·z [C, rows].
    /// </summary>
    public IReadOnlyList<StackedPerturbation> Stack(IReadOnlyList<Generator> generators, double sigma, ScalarType dtype)
    {
        int c = generators.Count;
        var draws = empty(c, DrawLength, dtype: dtype);
        for (int j = 0; j < c; j++)
        {
            using var row = draws[j];
            row.normal_(0, 1, generators[j]);
        }
        double scale = sigma / Math.Sqrt(Rank);
        var stacked = new StackedPerturbation[_shapes.Length];
        long at = 0;
        for (int k = 0; k < _shapes.Length; k++)
        {
            var (rows, cols, lowRank) = _shapes[k];
            if (lowRank)
            {
                var a = draws.narrow(1, at, rows * Rank).mul_(scale).view(c, rows, Rank);
                var b = draws.narrow(1, at + rows * Rank, cols * Rank).view(c, cols, Rank);
                stacked[k] = new StackedPerturbation(a, b, null);
                at += Rank * (rows + cols);
            }
            else
            {
                stacked[k] = new StackedPerturbation(null, null, draws.narrow(1, at, rows).mul_(sigma));
                at += rows;
            }
        }
        return stacked;
    }

    /// <summary>Σ_i c_i·ε_i over one stacked chunk, added into the flat <paramref name="sum"/>: one matmul per matrix.</summary>
    public void AddCombination(IReadOnlyList<StackedPerturbation> chunk, Tensor coefficients, Tensor sum)
    {
        using var scope = NewDisposeScope();
        long off = 0;
        for (int k = 0; k < _shapes.Length; k++)
        {
            var (rows, cols, lowRank) = _shapes[k];
            var slice = sum.narrow(0, off, rows * cols);
            var p = chunk[k];
            if (lowRank)
            {
                long c = p.A!.shape[0];
                // Σ_i c_i·A_i·B_iᵀ = [A_0 c_0 | … | A_C c_C] · [B_0 | … | B_C]ᵀ, a [rows, C·r] × [C·r, cols] product.
                var weighted = p.A.mul(coefficients.view(c, 1, 1)).permute(1, 0, 2).reshape(rows, c * Rank);
                var factors = p.B!.permute(1, 0, 2).reshape(cols, c * Rank);
                slice.view(rows, cols).addmm_(weighted, factors.t());               // accumulated in place
            }
            else
            {
                slice.add_(coefficients.matmul(p.Z!));
            }
            off += rows * cols;
        }
    }
}
