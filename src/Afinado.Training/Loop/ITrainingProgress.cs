namespace Afinado.Training.Loop;

/// <summary>Where the loop reports progress (a Spectre progress bar on a terminal, plain lines otherwise).</summary>
public interface ITrainingProgress
{
    void Begin(long firstStep, long totalSteps);
    void Step(long step, double loss, double learningRate, double positionsPerSecond, TimeSpan eta);
    void Evaluated(long step, double validationLoss);
    /// <summary>A line for the user; its parameters stay typed, so the front end names them (the CLI as flags).</summary>
    void Message(InputText text);
}

/// <summary>Discards progress (tests, library callers).</summary>
public sealed class SilentProgress : ITrainingProgress
{
    public void Begin(long firstStep, long totalSteps) { }
    public void Step(long step, double loss, double learningRate, double positionsPerSecond, TimeSpan eta) { }
    public void Evaluated(long step, double validationLoss) { }
    public void Message(InputText text) { }
}
