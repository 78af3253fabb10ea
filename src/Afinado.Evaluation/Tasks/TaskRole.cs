namespace Afinado.Evaluation.Tasks;

/// <summary>What a task is for in a finetuning comparison.</summary>
public enum TaskRole
{
    /// <summary>The task finetuning is meant to improve.</summary>
    Target,
    /// <summary>A task the model already did and should keep doing: any drop on it is the alignment tax.</summary>
    Retained,
}
