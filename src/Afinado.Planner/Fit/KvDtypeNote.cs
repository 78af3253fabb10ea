using Afinado.Planner.Devices;
using Afinado.Planner.Memory;

namespace Afinado.Planner.Fit;

/// <summary>
/// transformers keeps its KV cache in the compute dtype: DynamicCache and StaticCache store the key/value states as the
/// layers make them (cache_utils DynamicLayer.update, StaticLayer.lazy_initialization take the states' dtype). Its
/// QuantizedCache (<c>cache_implementation="quantized"</c>; nbits 2/4 with optimum-quanto, 1/2/3/4/8 with HQQ) keeps up to
/// <c>residual_length</c> = 128 tokens in full precision and, at every decode step, dequantizes the whole cache of each
/// layer and concatenates it with them (QuantizedLayer.update), transients this planner does not trace; no cache of
/// transformers stores fp8. A plan at another KV dtype therefore sizes the cache as a serving engine keeps it (vLLM's
/// <c>--kv-cache-dtype fp8</c>) inside transformers' step, and says so; it is not offered as a fix either (FixFinder).
/// </summary>
internal static class KvDtypeNote
{
    public static InputText? For(Job job, DeviceKind kind)
    {
        if (job.IsTraining || kind != DeviceKind.Gpu || job.KvDtype is not { } kv || kv == job.Precision.ComputeDType()) return null;
        const string quantized = "transformers' QuantizedCache (int2/int4 with optimum-quanto, up to 8 bits with HQQ) also keeps 128 full-precision " +
            "tokens and dequantizes each layer's whole cache at every decode step, which this plan does not model";
        // One interpolation, so that the flag renders as the caller names it (InputText).
        return (InputText)$"{JobParameters.KvDtype} {kv.Name()}: the KV lines are sized at {kv.Name()}, as a serving engine stores its cache (vLLM --kv-cache-dtype), inside transformers' step, whose own caches keep the compute dtype ({job.Precision.ComputeDType().Name()}); {quantized}";
    }
}
