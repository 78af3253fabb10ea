using Afinado.Planner.Architecture;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Afinado.Training.Models;

/// <summary>The decoder trunk (Hugging Face LlamaModel): <c>embed_tokens</c>, <c>layers.N</c>, final <c>norm</c>.</summary>
public sealed class LlamaModel : nn.Module<Tensor, Tensor>
{
    /// <summary>Submodules and parameters are registered explicitly under their Hugging Face names; TorchSharp's
    /// reflection-based registration would add every field and property again under C# names.</summary>
    protected override void RegisterComponents() { }

    private readonly Rotary rotary;
    private readonly Rotary? localRotary;
    private readonly double embeddingScale;

    public LlamaModel(ModelArchitecture arch) : base(nameof(LlamaModel))
    {
        EmbedTokens = nn.Embedding(arch.VocabSize, arch.HiddenSize);
        rotary = new Rotary(arch.HeadDim, arch.RopeTheta, arch.PartialRotaryFactor, arch.RopeScaling);
        // Gemma 3's sliding layers rotate with their own base and no scaling (Gemma3TextModel.rotary_emb_local).
        localRotary = arch.LocalRopeTheta is { } local ? new Rotary(arch.HeadDim, local, arch.PartialRotaryFactor) : null;
        Layers = new ModuleList<LlamaDecoderLayer>();
        for (int i = 0; i < arch.NumLayers; i++)
            Layers.Add(new LlamaDecoderLayer(arch, localRotary is not null && arch.IsSlidingLayer(i) ? localRotary : rotary, i));
        Norm = new RmsNorm(arch.HiddenSize, arch.NormEpsilon, arch.NormWeightOffset);
        embeddingScale = arch.EmbeddingMultiplier;
        register_module("embed_tokens", EmbedTokens);
        register_module("layers", Layers);
        register_module("norm", Norm);
    }

    public Embedding EmbedTokens { get; }
    public ModuleList<LlamaDecoderLayer> Layers { get; }
    public RmsNorm Norm { get; }

    /// <summary>Recompute each block's activations in backward instead of keeping them (see <see cref="CheckpointedBlock"/>).</summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>The token embeddings as the layers receive them: Gemma scales them by √hidden
    /// (GemmaModel: <c>hidden_states * normalizer</c>, the normalizer in the hidden states' dtype).</summary>
    public Tensor Embed(Tensor inputIds)
    {
        var x = EmbedTokens.call(inputIds);
        return embeddingScale == 1 ? x : x.mul((float)embeddingScale);
    }

    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var x = Embed(inputIds);
        foreach (var layer in Layers)
            x = GradientCheckpointing && is_grad_enabled() ? CheckpointedBlock.Apply(layer, x) : layer.call(x);
        return Norm.call(x).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { rotary.Dispose(); localRotary?.Dispose(); }
        base.Dispose(disposing);
    }
}
