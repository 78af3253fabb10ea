using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// One decoder layer's keys and values for generation, [B, kv_heads, T, D] after RoPE and before the grouped-query
/// repeat, grown by concatenation as transformers' DynamicLayer does. Owns its tensors.
/// </summary>
public sealed class LayerKvCache : IDisposable
{
    private Tensor? _keys, _values;

    /// <summary>Positions cached so far.</summary>
    public long Length => _keys?.shape[2] ?? 0;

    /// <summary>Appends new keys and values; returns all of them (views the caller must not dispose).</summary>
    internal (Tensor Keys, Tensor Values) Append(Tensor keys, Tensor values)
    {
        var k = _keys is null ? keys.detach().clone() : cat([_keys, keys.detach()], 2);
        var v = _values is null ? values.detach().clone() : cat([_values, values.detach()], 2);
        _keys?.Dispose();
        _values?.Dispose();
        _keys = k.DetachFromDisposeScope();
        _values = v.DetachFromDisposeScope();
        return (_keys.alias(), _values.alias());
    }

    public void Dispose()
    {
        _keys?.Dispose();
        _values?.Dispose();
        _keys = _values = null;
    }
}

/// <summary>Every layer's <see cref="LayerKvCache"/>.</summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly LayerKvCache[] _layers = Enumerable.Range(0, layers).Select(_ => new LayerKvCache()).ToArray();

    public LayerKvCache this[int layer] => _layers[layer];

    /// <summary>Positions cached (every layer holds the same number).</summary>
    public long Length => _layers.Length == 0 ? 0 : _layers[0].Length;

    public void Dispose()
    {
        foreach (var l in _layers) l.Dispose();
    }
}
