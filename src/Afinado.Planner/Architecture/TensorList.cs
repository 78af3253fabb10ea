namespace Afinado.Planner.Architecture;

/// <summary>
/// Builds a model's tensor list in module order with the shapes transformers gives each module type,
/// so each family file reads like the transformers <c>__init__</c> it mirrors. Widths are longs so nothing wraps.
/// </summary>
internal sealed class TensorList
{
    private readonly List<ParameterTensor> _tensors = [];

    public IReadOnlyList<ParameterTensor> Tensors => _tensors;

    /// <summary><c>nn.Linear(in, out, bias)</c>: weight [out, in], bias [out].</summary>
    public void Linear(string module, long outFeatures, long inFeatures, bool bias, TensorRole role, int? layer = null, int? expert = null)
    {
        _tensors.Add(new(module + ".weight", [outFeatures, inFeatures], role, layer, expert));
        if (bias) _tensors.Add(new(module + ".bias", [outFeatures], role, layer, expert));
    }

    /// <summary>transformers' <c>Conv1D(nf=out, nx=in)</c> (GPT-2): weight stored [in, out], bias [out].</summary>
    public void Conv1D(string module, long outFeatures, long inFeatures, TensorRole role, int layer)
    {
        _tensors.Add(new(module + ".weight", [inFeatures, outFeatures], role, layer) { Conv1D = true });
        _tensors.Add(new(module + ".bias", [outFeatures], role, layer));
    }

    /// <summary>A LayerNorm (weight and, if <paramref name="bias"/>, bias) or RMSNorm (weight only).</summary>
    public void Norm(string module, long width, bool bias, int? layer = null)
    {
        _tensors.Add(new(module + ".weight", [width], TensorRole.Norm, layer));
        if (bias) _tensors.Add(new(module + ".bias", [width], TensorRole.Norm, layer));
    }

    /// <summary>A bias alone, for a linear whose weight is tied elsewhere (phi's lm_head when tie_word_embeddings).</summary>
    public void Bias(string module, long width, TensorRole role) =>
        _tensors.Add(new(module + ".bias", [width], role));

    /// <summary>A vision-tower or projector tensor of any shape (a conv kernel is [out, in, k, k]).</summary>
    public void Vision(string name, params long[] shape) => _tensors.Add(new(name, shape, TensorRole.Vision));

    /// <summary>An <c>nn.Linear</c> of an image encoder or projector: weight [out, in] (a LoRA target) and, when it has one,
    /// bias [out], both vision tensors.</summary>
    public void VisionLinear(string module, long outFeatures, long inFeatures, bool bias = true)
    {
        _tensors.Add(new(module + ".weight", [outFeatures, inFeatures], TensorRole.Vision) { VisionLinear = true });
        if (bias) Vision(module + ".bias", outFeatures);
    }

    /// <summary>An image encoder's <c>nn.LayerNorm</c>: weight and bias.</summary>
    public void VisionLayerNorm(string module, long width)
    {
        Vision(module + ".weight", width);
        Vision(module + ".bias", width);
    }

    /// <summary>A tensor of its own shape (gpt_oss's attention sinks and stacked experts).</summary>
    public void Add(ParameterTensor tensor) => _tensors.Add(tensor);

    /// <summary>Appends tensors built elsewhere (a text model nested in a multimodal one, renamed).</summary>
    public void AddRange(IEnumerable<ParameterTensor> tensors) => _tensors.AddRange(tensors);

    public void Embedding(string name, long rows, long width, TensorRole role) =>
        _tensors.Add(new(name, [rows, width], role));
}
