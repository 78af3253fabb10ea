using static TorchSharp.torch;

namespace Afinado.Training.Checkpoints;

/// <summary>Dtype and shape a trainable tensor must have.</summary>
public sealed record TensorSpec(ScalarType DType, long[] Shape);

/// <summary>
/// What a checkpoint of this run must hold to be resumed from: a step within [0, <paramref name="MaxStep"/>], exactly
/// the run's trainable tensors (names, dtypes, shapes), finite values everywhere, and a libtorch RNG state of the length
/// this libtorch uses (a wrong length aborts the process natively in <c>set_rng_state</c>, so it is checked first).
/// </summary>
public sealed record CheckpointExpectation(long MaxStep, IReadOnlyDictionary<string, TensorSpec> Trainable, long RngStateBytes)
{
    /// <summary>Throws <see cref="CheckpointDamagedException"/> naming the first thing that does not hold.</summary>
    public void Check(CheckpointState s, IReadOnlyDictionary<string, Tensor> trainable, IReadOnlyDictionary<string, Tensor> optimizerState)
    {
        if (s.Step < 0 || s.Step > MaxStep) throw new CheckpointDamagedException($"state.json says step {s.Step}, outside this run's 0..{MaxStep}");
        if (!double.IsFinite(s.WallSeconds) || s.WallSeconds < 0 || s.ForwardPasses < 0 || s.TrainPositions < 0)
            throw new CheckpointDamagedException("state.json has negative or non-finite counters");
        CheckRng(s.TorchRngState);
        foreach (var (name, spec) in Trainable)
        {
            if (!trainable.TryGetValue(name, out var t)) throw new CheckpointDamagedException($"trainable.safetensors lacks {name}, which this run trains");
            if (t.dtype != spec.DType || !t.shape.SequenceEqual(spec.Shape))
                throw new CheckpointDamagedException($"trainable.safetensors holds {name} as {t.dtype} [{string.Join(",", t.shape)}], the model needs {spec.DType} [{string.Join(",", spec.Shape)}]");
        }
        if (trainable.Keys.FirstOrDefault(k => !Trainable.ContainsKey(k)) is { } extra)
            throw new CheckpointDamagedException($"trainable.safetensors holds {extra}, which this run does not train");
        // Optimizer entries are "<kind>/<parameter name>": a state tensor of a trainable must have its shape.
        foreach (var (key, t) in optimizerState)
        {
            var slash = key.IndexOf('/');
            if (slash > 0 && Trainable.TryGetValue(key[(slash + 1)..], out var spec) && !t.shape.SequenceEqual(spec.Shape))
                throw new CheckpointDamagedException($"optimizer.safetensors holds {key} with shape [{string.Join(",", t.shape)}], not [{string.Join(",", spec.Shape)}]");
        }
        if (FirstNonFinite(trainable) is { } bad) throw new CheckpointDamagedException($"trainable.safetensors holds NaN or infinite values in {bad}");
        if (FirstNonFinite(optimizerState) is { } badOpt) throw new CheckpointDamagedException($"optimizer.safetensors holds NaN or infinite values in {badOpt}");
    }

    /// <summary>The first tensor (by name) with a NaN or infinite element, or null when all are finite.</summary>
    public static string? FirstNonFinite(IReadOnlyDictionary<string, Tensor> tensors)
    {
        foreach (var (name, t) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!t.is_floating_point()) continue;
            using var finite = isfinite(t).all();
            if (!finite.item<bool>()) return name;
        }
        return null;
    }

    private void CheckRng(string? rng)
    {
        if (rng is null) throw new CheckpointDamagedException("state.json has no torch_rng_state");
        byte[] bytes;
        try { bytes = Convert.FromBase64String(rng); }
        catch (FormatException) { throw new CheckpointDamagedException("state.json's torch_rng_state is not base64"); }
        if (bytes.Length != RngStateBytes)
            throw new CheckpointDamagedException($"state.json's torch_rng_state has {bytes.Length} bytes, libtorch's generator state has {RngStateBytes}");
    }
}
