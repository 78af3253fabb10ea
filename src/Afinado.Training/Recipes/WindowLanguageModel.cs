using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Afinado.Training.Recipes;

/// <summary>
/// The small fixed-window neural language model (Bengio et al. 2003 style) over bytes of <c>afinado eval</c>'s fortunes
/// recipe (base, finetune and head-only alternative, trained by <see cref="WindowLmTrainer"/>): the embeddings of the
/// current and previous <c>context − 1</c> tokens are concatenated and fed through a tanh layer to next-token logits.
/// Causal by construction. The output layer is named <c>head</c> ("last layer only" trains just it).
/// </summary>
public sealed class WindowLanguageModel : Module<Tensor, Tensor>
{
    public const string LastLayerPrefix = "head.";
    private readonly int _context;
    private readonly Embedding embed;
    private readonly Linear hidden;
    private readonly Linear head;

    public WindowLanguageModel(int vocab, int context, int embedding, int hiddenSize) : base(nameof(WindowLanguageModel))
    {
        _context = context;
        embed = Embedding(vocab, embedding);
        hidden = Linear(context * embedding, hiddenSize);
        head = Linear(hiddenSize, vocab);
        RegisterComponents();
    }

    /// <param name="ids">[B, T] token ids.</param>
    /// <returns>[B, T, V] logits for the token after each position.</returns>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var t = ids.shape[1];
        var e = embed.call(ids);                                         // [B, T, E]
        var padded = functional.pad(e, [0, 0, _context - 1, 0]);         // zeros before the first token
        var windows = Enumerable.Range(0, _context).Select(k => padded.narrow(1, k, t)).ToArray(); // oldest … current
        var h = hidden.call(cat(windows, 2)).tanh();
        return head.call(h).MoveToOuterDisposeScope();
    }

    public static long FreezeAllButHead(Module model) => ModuleFreezing.TrainOnly(model, LastLayerPrefix);
}
