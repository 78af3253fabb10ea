namespace Afinado.Planner.Tests.Parallel;

/// <summary>
/// t5-3b (DeepSpeed's memory.rst example) derived from its config.json: d_model 1024, d_ff 16384, d_kv 128,
/// 32 heads, 24 encoder + 24 decoder layers, vocab 32128, tied embeddings, relative attention bias 32 buckets × 32 heads
/// in the first block of each stack. The planner has no encoder-decoder family; the test derives the two numbers
/// DeepSpeed's estimator takes (total params, largest layer params) from these dimensions.
/// </summary>
internal static class T5ThreeB
{
    public const long DModel = 1024, DFf = 16384, Heads = 32, DKv = 128, Layers = 24, Vocab = 32128, Buckets = 32;

    /// <summary>Every parameter tensor's size, in model order.</summary>
    public static IReadOnlyList<long> TensorSizes()
    {
        long inner = Heads * DKv;
        var t = new List<long> { Vocab * DModel }; // shared embedding (= lm_head, tied)
        for (int stack = 0; stack < 2; stack++)
        {
            bool decoder = stack == 1;
            for (int i = 0; i < Layers; i++)
            {
                t.AddRange([inner * DModel, inner * DModel, inner * DModel, DModel * inner]); // self-attn q k v o
                if (i == 0) t.Add(Buckets * Heads);                                        // relative_attention_bias
                t.Add(DModel);                                                              // layer_norm
                if (decoder) { t.AddRange([inner * DModel, inner * DModel, inner * DModel, DModel * inner]); t.Add(DModel); }
                t.AddRange([DFf * DModel, DModel * DFf]);                                   // wi, wo
                t.Add(DModel);                                                              // layer_norm
            }
            t.Add(DModel);                                                                  // final_layer_norm
        }
        return t;
    }

    public static long Parameters => TensorSizes().Sum();
    /// <summary>The largest module's own parameters: the shared embedding (the estimator's "32M largest layer params").</summary>
    public static long LargestLayer => TensorSizes().Max();
}
