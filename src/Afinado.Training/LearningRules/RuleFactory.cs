using Afinado.Planner;
using Afinado.Training.Optim;

namespace Afinado.Training.LearningRules;

/// <summary>Everything needed to build a rule by its CLI name; the defaults are sensible for small classifiers.</summary>
public sealed record RuleSettings
{
    /// <summary><c>backprop</c>, <c>es</c>, <c>guided-es</c> or <c>dfa</c>.</summary>
    public string Rule { get; init; } = "backprop";
    public EsOptions Es { get; init; } = new();
    public GuidedEsOptions GuidedEs { get; init; } = new();
    /// <summary>Guided ES surrogate source: <c>dfa</c>, <c>backprop</c> or <c>stale-backprop</c>.</summary>
    public string Surrogate { get; init; } = "dfa";
    /// <summary>For <c>stale-backprop</c>: recompute the gradient every this many steps.</summary>
    public int StaleEvery { get; init; } = 10;
    public ulong FeedbackSeed { get; init; } = 7;
}

/// <summary>Builds an <see cref="ILearningRule"/> from its name, so <c>--rule</c> is one switch in the training command.</summary>
public static class RuleFactory
{
    public static readonly IReadOnlyList<string> Names = ["backprop", "es", "guided-es", "dfa"];

    /// <param name="optimizer">Built by the caller over <c>model.TrainableParameters</c>; every rule hands it a .grad to step
    /// on. May be null only for <c>es</c>: the direct MeZO-style update then needs no optimizer state.</param>
    public static ILearningRule Create(RuleSettings settings, ILossModel model, IOptimizer? optimizer) => settings.Rule switch
    {
        "es" => new EsRule(model, optimizer, settings.Es),
        _ when optimizer is null => throw new InputError("--optimizer", $"rule {settings.Rule} needs an optimizer", "Pass --optimizer adam or sgd; only es can run without one."),
        "backprop" => new BackpropRule(model, optimizer),
        "guided-es" => new GuidedEsRule(model, Surrogate(settings, model), optimizer, settings.GuidedEs),
        "dfa" => new DfaRule(RequireFeedback(model, "dfa"), optimizer, new DfaFeedback(settings.FeedbackSeed)),
        _ => throw new InputError("--rule", $"'{settings.Rule}' is not a learning rule", $"Use one of: {string.Join(", ", Names)}."),
    };

    private static ISurrogateGradient Surrogate(RuleSettings s, ILossModel model) => s.Surrogate switch
    {
        "dfa" => new DfaSurrogate(RequireFeedback(model, "a dfa surrogate"), new DfaFeedback(s.FeedbackSeed)),
        "backprop" => new StaleBackpropSurrogate(model, 1),
        "stale-backprop" => new StaleBackpropSurrogate(model, s.StaleEvery),
        _ => throw new InputError("--surrogate", $"'{s.Surrogate}' is not a surrogate source", "Use dfa, backprop or stale-backprop."),
    };

    private static IFeedbackModel RequireFeedback(ILossModel model, string what) =>
        model as IFeedbackModel ?? throw new InputError("--rule", $"{what} needs a model with DFA feedback taps and {model.GetType().Name} has none",
            "Use backprop or es with this model, or a model that implements IFeedbackModel.");
}
