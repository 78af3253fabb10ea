using Afinado.Planner.Architecture;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>Pre-norm decoder block: x + attn(norm(x)), then + mlp(norm(x)).</summary>
public sealed class LlamaDecoderLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly RmsNorm inputLayernorm, postAttentionLayernorm;
    private readonly LlamaMlp mlp;

    public LlamaDecoderLayer(ModelArchitecture arch, Rotary rotary) : base(nameof(LlamaDecoderLayer))
    {
        inputLayernorm = new RmsNorm(arch.HiddenSize, arch.NormEpsilon);
        SelfAttention = new LlamaAttention(arch, rotary);
        postAttentionLayernorm = new RmsNorm(arch.HiddenSize, arch.NormEpsilon);
        mlp = new LlamaMlp(arch);
        register_module("input_layernorm", inputLayernorm);
        register_module("self_attn", SelfAttention);
        register_module("post_attention_layernorm", postAttentionLayernorm);
        register_module("mlp", mlp);
    }

    public LlamaAttention SelfAttention { get; }

    /// <summary>The block over new tokens with the layer's KV cache (generation).</summary>
    public Tensor Step(Tensor x, LayerKvCache cache)
    {
        using var scope = NewDisposeScope();
        var h = x + SelfAttention.Step(inputLayernorm.call(x), cache);
        var y = h + mlp.call(postAttentionLayernorm.call(h));
        return y.MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + SelfAttention.call(inputLayernorm.call(x));
        var y = h + mlp.call(postAttentionLayernorm.call(h));
        return y.MoveToOuterDisposeScope();
    }
}
