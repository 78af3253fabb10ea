using System.Text.Json.Nodes;
using Afinado.Planner.Allocator;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Devices;
using Afinado.Planner.Memory;
using static Afinado.Planner.Tests.Memory.PlanHelpers;

namespace Afinado.Planner.Tests.Memory;

/// <summary>
/// The KV cache per layer type, as transformers' cache_utils.py (4.56+) keeps it: generate() builds
/// <c>DynamicCache(config=...)</c>, whose sliding layers (DynamicSlidingWindowLayer) keep a view of the last
/// <c>window − 1</c> tokens of each concatenation. So after the prefill a sliding layer still holds the prompt's storage,
/// and from the first decode step on it holds <c>min(seen, window)</c> tokens; a static cache allocates the window at once.
/// </summary>
public class SlidingWindowCacheTests
{
    // google/gemma-3-1b-it: 26 layers, sliding_window 512, every sixth layer global (5, 11, 17, 23), one KV head of 256.
    private static readonly ModelArchitecture Gemma3_1B = ModelCatalog.Get("google/gemma-3-1b-it");
    private const long Gemma3PerLayerToken = 2 * 1 * 256 * 2; // K and V · kv_heads · head_dim · bf16

    private static ModelArchitecture Edited(string model, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(ModelCatalog.ConfigJson(model))!.AsObject();
        edit(node);
        return HfConfigReader.Parse(node.ToJsonString(), "config.json");
    }

    [Fact]
    public void Gemma3_decode_caches_the_window_on_sliding_layers_and_the_context_on_global_ones()
    {
        Assert.Equal(22, Gemma3_1B.SlidingLayerCount);
        var l = Ledger(Gemma3_1B, new Job { Task = JobTask.Infer, Seq = 1024, Context = 32768 });
        // 4 global layers × 32,768 tokens + 22 sliding layers × 512 tokens.
        Assert.Equal(Gemma3PerLayerToken * (4 * 32768 + 22 * 512), l.Line(LineKind.KvCacheFullContext).Bytes, tolerance: 0.5);
        // The prefill's concatenation is the storage a sliding layer's view keeps: every layer holds the 1,024 prompt tokens.
        Assert.Equal(Gemma3PerLayerToken * 26 * 1024, l.Line(LineKind.KvCachePrompt).Bytes, tolerance: 0.5);
        // Counting every layer at full length (the planner before) would say 26 × 32,768 tokens: 5.99× the cache.
        Assert.True(l.Line(LineKind.KvCacheFullContext).Bytes * 5.9 < Gemma3PerLayerToken * 26.0 * 32768);
    }

    [Fact]
    public void A_context_inside_the_window_is_cached_whole_on_every_layer()
    {
        var l = Ledger(Gemma3_1B, new Job { Task = JobTask.Infer, Seq = 100, Context = 400 });
        Assert.Equal(Gemma3PerLayerToken * 26 * 400, l.Line(LineKind.KvCacheFullContext).Bytes, tolerance: 0.5);
    }

    [Fact]
    public void A_static_cache_allocates_the_window_on_sliding_layers_from_the_prefill()
    {
        var l = Ledger(Gemma3_1B, new Job { Task = JobTask.Infer, Seq = 1024, Context = 8192, KvCache = KvCacheKind.Static });
        double expected = Gemma3PerLayerToken * (4 * 8192 + 22 * 512);
        Assert.Equal(expected, l.Line(LineKind.KvCachePrompt).Bytes, tolerance: 0.5);
        Assert.Equal(expected, l.Line(LineKind.KvCacheFullContext).Bytes, tolerance: 0.5);
    }

    [Fact]
    public void Mistral_v01_slides_on_every_layer_and_v03_on_none()
    {
        // Mistral has no layer_types: DynamicCache(config) makes every layer sliding when sliding_window is set (v0.1: 4096).
        var v01 = ModelCatalog.Get("mistralai/Mistral-7B-v0.1");
        var v03 = ModelCatalog.Get("mistralai/Mistral-7B-v0.3");
        Assert.Equal(32, v01.SlidingLayerCount);
        Assert.Equal(0, v03.SlidingLayerCount);
        var job = new Job { Task = JobTask.Infer, Seq = 512, Context = 16384 };
        long perLayerToken = 2L * 8 * 128 * 2;
        Assert.Equal(perLayerToken * 32 * 4096, Ledger(v01, job).Line(LineKind.KvCacheFullContext).Bytes, tolerance: 0.5);
        Assert.Equal(perLayerToken * 32 * 16384, Ledger(v03, job).Line(LineKind.KvCacheFullContext).Bytes, tolerance: 0.5);
    }

    [Fact]
    public void Qwen_slides_from_max_window_layers_only_when_use_sliding_window_is_set()
    {
        // Qwen2.5-0.5B: 24 layers, sliding_window set but use_sliding_window false: no layer slides.
        Assert.Equal(0, ModelCatalog.Get("Qwen/Qwen2.5-0.5B").SlidingLayerCount);
        var on = Edited("Qwen/Qwen2.5-0.5B", n =>
        {
            n["use_sliding_window"] = true;
            n["sliding_window"] = 1024;
            n["max_window_layers"] = 20;
        });
        Assert.Equal(4, on.SlidingLayerCount);
        Assert.All(Enumerable.Range(0, 24), i => Assert.Equal(i >= 20, on.IsSlidingLayer(i)));
        // layer_types, when present, wins over max_window_layers.
        var listed = Edited("Qwen/Qwen2.5-0.5B", n =>
        {
            n["use_sliding_window"] = true;
            n["sliding_window"] = 1024;
            n["layer_types"] = new JsonArray(Enumerable.Range(0, 24).Select(i => (JsonNode)(i % 2 == 0 ? "sliding_attention" : "full_attention")).ToArray());
        });
        Assert.Equal(12, listed.SlidingLayerCount);
        Assert.True(listed.IsSlidingLayer(0));
        Assert.False(listed.IsSlidingLayer(1));
    }

    [Fact]
    public void A_negative_max_window_layers_names_the_key()
    {
        var e = Assert.Throws<InputError>(() => Edited("Qwen/Qwen2.5-0.5B", n =>
        {
            n["use_sliding_window"] = true;
            n["max_window_layers"] = -1;
        }));
        Assert.Contains("max_window_layers", e.Message);
    }

    [Fact]
    public void The_decode_trace_allocates_window_long_caches_on_sliding_layers_and_agrees_with_the_ledger()
    {
        var job = new Job { Task = JobTask.Infer, Seq = 1024, Context = 32768 };
        var profile = ModelProfile.Create(Planner.Fit.Planner.SelectionFor(Gemma3_1B, job));
        var trace = StepTraces.For(profile, job);
        long window = Gemma3PerLayerToken / 2 * 512; // one layer's K (or V) at the window
        int windowCaches = trace.Events.Count(e => e.Kind == TraceEventKind.Allocate && e.Bytes == window);
        // K and V of 22 sliding layers at every traced decode step (64) and at the skip ahead, plus each layer's prefill
        // rotate_half temporary of k, which happens to be the same size (half of 1,024 tokens × 256 × 2 B).
        Assert.Equal(2 * 22 * (StepTraces.MaxTracedDecodeSteps + 1) + 26, windowCaches);
        // The last step's caches at the full context: K and V of the 4 global layers only.
        long full = Gemma3PerLayerToken / 2 * 32768;
        Assert.Equal(2 * 4, trace.Events.Count(e => e.Kind == TraceEventKind.Allocate && e.Bytes == full));
        // The op-by-op trace and the ledger's moment sums, derived apart, agree on the peak (the trace also holds the workspaces).
        var ledger = LedgerBuilder.Build(profile, job, DeviceKind.Gpu);
        double traced = trace.PeakLiveBytes - job.Stack.WorkspaceBytes;
        Assert.InRange(traced / ledger.PeakBytes, 0.95, 1.05);
    }
}
