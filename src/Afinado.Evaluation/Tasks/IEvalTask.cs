using TorchSharp;
using static TorchSharp.torch;

namespace Afinado.Evaluation.Tasks;

/// <summary>A task that can score any TorchSharp model mapping inputs to logits over its classes or vocabulary.</summary>
public interface IEvalTask
{
    TaskInfo Info { get; }
    int ItemCount { get; }
    TaskScores Score(nn.Module<Tensor, Tensor> model, string modelName);
}
