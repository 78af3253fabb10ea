using Afinado.Planner.Architecture;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>
/// Pre-norm decoder block: x + attn(norm(x)), then + mlp(norm(x)). Gemma 2 and 3 (four norms per layer) also normalise
/// each sub-block's output before its residual add: x + post_attention_layernorm(attn(input_layernorm(x))), then
/// + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x))) (transformers Gemma2DecoderLayer).
/// </summary>
public sealed class LlamaDecoderLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly RmsNorm inputLayernorm, postAttentionLayernorm;
    private readonly RmsNorm? preFeedforwardLayernorm, postFeedforwardLayernorm;
    private readonly LlamaMlp mlp;

    public LlamaDecoderLayer(ModelArchitecture arch, Rotary rotary, int layer = 0) : base(nameof(LlamaDecoderLayer))
    {
        double offset = arch.NormWeightOffset;
        inputLayernorm = new RmsNorm(arch.HiddenSize, arch.NormEpsilon, offset);
        SelfAttention = new LlamaAttention(arch, rotary, layer);
        postAttentionLayernorm = new RmsNorm(arch.HiddenSize, arch.NormEpsilon, offset);
        mlp = new LlamaMlp(arch, layer);
        register_module("input_layernorm", inputLayernorm);
        register_module("self_attn", SelfAttention);
        register_module("post_attention_layernorm", postAttentionLayernorm);
        if (arch.NormsPerLayer == 4)
        {
            preFeedforwardLayernorm = new RmsNorm(arch.HiddenSize, arch.NormEpsilon, offset);
            postFeedforwardLayernorm = new RmsNorm(arch.HiddenSize, arch.NormEpsilon, offset);
            register_module("pre_feedforward_layernorm", preFeedforwardLayernorm);
            register_module("post_feedforward_layernorm", postFeedforwardLayernorm);
        }
        register_module("mlp", mlp);
    }

    public LlamaAttention SelfAttention { get; }

    /// <summary>The block over new tokens with the layer's KV cache (generation).</summary>
    public Tensor Step(Tensor x, LayerKvCache cache) => Block(x, cache);

    public override Tensor forward(Tensor x) => Block(x, null);

    private Tensor Block(Tensor x, LayerKvCache? cache)
    {
        using var scope = NewDisposeScope();
        var normed = inputLayernorm.call(x);
        var attended = cache is null ? SelfAttention.call(normed) : SelfAttention.Step(normed, cache);
        Tensor y;
        if (preFeedforwardLayernorm is null)
        {
            var h = x + attended;
            y = h + mlp.call(postAttentionLayernorm.call(h));
        }
        else
        {
            var h = x + postAttentionLayernorm.call(attended);
            y = h + postFeedforwardLayernorm!.call(mlp.call(preFeedforwardLayernorm.call(h)));
        }
        return y.MoveToOuterDisposeScope();
    }
}
