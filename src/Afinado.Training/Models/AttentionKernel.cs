namespace Afinado.Training.Models;

/// <summary>How attention scores are computed. Both give the same result; they differ in memory and speed.</summary>
public enum AttentionKernel
{
    /// <summary>libtorch's fused <c>scaled_dot_product_attention</c> (CPU flash kernel: no [T,T] score matrix kept).</summary>
    Sdpa,
    /// <summary>Explicit QKᵀ, mask, softmax, ·V: materialises the [B,H,T,T] scores and probabilities.</summary>
    Eager,
}
