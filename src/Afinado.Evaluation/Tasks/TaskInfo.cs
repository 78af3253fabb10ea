namespace Afinado.Evaluation.Tasks;

/// <summary>
/// What a task is and how its score reads. <paramref name="Metric"/> is e.g. <c>accuracy</c> or <c>loss/token</c>;
/// <paramref name="HigherIsBetter"/> orients gains and taxes (accuracy up is good, loss up is a tax).
/// </summary>
public sealed record TaskInfo(string Name, TaskRole Role, string Kind, string Metric, bool HigherIsBetter)
{
    public const string Classification = "classification";
    public const string LanguageModelling = "language_modelling";

    /// <summary>Turns a raw change (new − old) into an improvement: positive means better.</summary>
    public double Orient(double change) => HigherIsBetter ? change : -change;
}
