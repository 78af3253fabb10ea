using Afinado.Planner;
using Afinado.Training.Optim;
using Afinado.Planner.Memory;
using Afinado.Training.Loop;

namespace Afinado.Training.LearningRules;

/// <summary>Everything needed to build a rule by its CLI name; the defaults are sensible for small classifiers.</summary>
public sealed record RuleSettings
{
    /// <summary>Backprop, ES (direct when it gets no optimizer), Guided ES or DFA.</summary>
    public LearningRule Rule { get; init; } = LearningRule.Backprop;
    public EsOptions Es { get; init; } = new();
    public GuidedEsOptions GuidedEs { get; init; } = new();
    /// <summary>Guided ES surrogate source: <c>dfa</c>, <c>backprop</c> or <c>stale-backprop</c>.</summary>
    public string Surrogate { get; init; } = "dfa";
    /// <summary>For <c>stale-backprop</c>: recompute the gradient every this many steps.</summary>
    public int StaleEvery { get; init; } = 10;
    public ulong FeedbackSeed { get; init; } = 7;
}

/// <summary>Builds an <see cref="ILearningRule"/> from the planner's <see cref="LearningRule"/>, so <c>--rule</c> is one switch
/// in every host.</summary>
public static class RuleFactory
{
    /// <param name="optimizer">Built by the caller over <c>model.TrainableParameters</c>; every rule hands it a .grad to step
    /// on. May be null only for ES: the direct MeZO-style update then needs no optimizer state (es-direct is ES without one).</param>
    public static ILearningRule Create(RuleSettings settings, ILossModel model, IOptimizer? optimizer) => settings.Rule switch
    {
        LearningRule.Es => new EsRule(model, optimizer, settings.Es),
        LearningRule.EsDirect => new EsRule(model, null, settings.Es),
        _ when optimizer is null => throw new InputError(TrainParameters.Optimizer, $"rule {settings.Rule.Name()} needs an optimizer", $"Pass {TrainParameters.Optimizer} adam or sgd; only es can run without one."),
        LearningRule.Backprop => new BackpropRule(model, optimizer),
        LearningRule.GuidedEs => new GuidedEsRule(model, Surrogate(settings, model), optimizer, settings.GuidedEs),
        LearningRule.Dfa => new DfaRule(RequireFeedback(model, "dfa"), optimizer, new DfaFeedback(settings.FeedbackSeed)),
        _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.Rule, "not a learning rule"),
    };

    private static ISurrogateGradient Surrogate(RuleSettings s, ILossModel model) => s.Surrogate switch
    {
        "dfa" => new DfaSurrogate(RequireFeedback(model, "a dfa surrogate"), new DfaFeedback(s.FeedbackSeed)),
        "backprop" => new StaleBackpropSurrogate(model, 1),
        "stale-backprop" => new StaleBackpropSurrogate(model, s.StaleEvery),
        _ => throw new InputError(TrainParameters.Surrogate, $"'{s.Surrogate}' is not a surrogate source", "Use dfa, backprop or stale-backprop."),
    };

    private static IFeedbackModel RequireFeedback(ILossModel model, string what) =>
        model as IFeedbackModel ?? throw new InputError(TrainParameters.Rule, $"{what} needs a model with DFA feedback taps and {model.GetType().Name} has none",
            "Use backprop or es with this model, or a model that implements IFeedbackModel.");
}
