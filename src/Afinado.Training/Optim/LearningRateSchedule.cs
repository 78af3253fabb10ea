namespace Afinado.Training.Optim;

/// <summary>The learning rate of each step, as the training loop asks for it.</summary>
public interface ILearningRateSchedule
{
    double At(long step);
}

/// <summary>nanoGPT's schedule: linear warmup to <c>peak</c>, then cosine decay to <c>min</c> at <c>decaySteps</c>.</summary>
public sealed record LearningRateSchedule(double Peak, double Min, int WarmupSteps, int DecaySteps) : ILearningRateSchedule
{
    public double At(long step)
    {
        if (step < WarmupSteps) return Peak * (step + 1) / (WarmupSteps + 1);
        if (step >= DecaySteps) return Min;
        double progress = (step - WarmupSteps) / (double)Math.Max(1, DecaySteps - WarmupSteps);
        return Min + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (Peak - Min);
    }
}
