namespace Afinado.Training.Loop;

/// <summary>
/// The arguments of a training run besides its <see cref="TrainConfig"/>: the model folder it loads, the run folder it writes
/// (<c>out</c>) or continues (<c>resume</c>), the recipe and its task file.
/// </summary>
public static class RunParameters
{
    public static readonly InputParameter Model = new("model");
    public static readonly InputParameter Out = new("out");
    public static readonly InputParameter Resume = new("resume");
    public static readonly InputParameter Recipe = new("recipe");
    public static readonly InputParameter Tasks = new("tasks");
}
