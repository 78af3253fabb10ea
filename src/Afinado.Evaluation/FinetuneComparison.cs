using Afinado.Evaluation.Metrics;
using Afinado.Evaluation.Tasks;
using Afinado.Evaluation.Verdicts;

namespace Afinado.Evaluation;

/// <summary>
/// Turns per-item scores of several models on the same tasks into gains, taxes with paired bootstrap CIs, calibration
/// changes, forgetting summaries and the verdict. Pure: no model runs here, so every number is reproducible from the
/// per-item results (and the seed).
/// </summary>
public static class FinetuneComparison
{
    public const string Base = "base";
    public const string Finetuned = "finetuned";

    /// <param name="scores">Per task: the scores of "base", "finetuned" and any cheaper alternatives (other names).</param>
    /// <param name="alternativeLabels">Model name → how the verdict calls it (e.g. "last-layer" → "training only the last layer").</param>
    public static (IReadOnlyList<TaskEvaluation> Tasks, IReadOnlyList<BaselineGain> Gains, ForgettingSummary? Forgetting, Verdict Verdict) Compare(
        IReadOnlyList<IReadOnlyDictionary<string, TaskScores>> scores,
        IReadOnlyDictionary<string, string> alternativeLabels,
        FinetuneCost? cost,
        VerdictPolicy? policy = null,
        int bins = Calibration.DefaultBins,
        int resamples = PairedBootstrap.DefaultResamples,
        int seed = 0)
    {
        var tasks = new List<TaskEvaluation>();
        var gains = new List<BaselineGain>();
        var taxes = new List<RetainedTax>();
        var calibration = new List<CalibrationChange>();
        string? target = null;
        foreach (var byModel in scores)
        {
            if (!byModel.TryGetValue(Base, out var b) || !byModel.TryGetValue(Finetuned, out var f))
                throw new ArgumentException("every task needs scores for 'base' and 'finetuned'");
            var info = b.Task;
            if (b.Items.Count != f.Items.Count)
                throw new ArgumentException($"task '{info.Name}': base and finetuned were scored on different items ({b.Items.Count} vs {f.Items.Count})");
            var change = PairedBootstrap.Difference(b.Items.Count, b.ScoreOf, f.ScoreOf, resamples, seed);
            var modelScores = byModel.Values.Select(s => new ModelScore(s.Model, s.Score, HasPredictions(s) ? Calibration.Summarize(s.AllPredictions, bins) : null)).ToList();
            var baseCal = modelScores.First(m => m.Model == Base).Calibration;
            var ftCal = modelScores.First(m => m.Model == Finetuned).Calibration;
            Estimate? eceChange = null;
            if (baseCal is not null && ftCal is not null)
            {
                // ECE is not a mean over items, so its change gets the generic paired bootstrap (fewer resamples: each is O(n)).
                eceChange = PairedBootstrap.Difference(b.Items.Count,
                    idx => Calibration.ExpectedCalibrationError(b.PredictionsOf(idx), bins),
                    idx => Calibration.ExpectedCalibrationError(f.PredictionsOf(idx), bins),
                    Math.Max(100, resamples / 4), seed + 1);
                calibration.Add(new CalibrationChange(info.Name, baseCal.Ece, ftCal.Ece, eceChange));
            }
            Estimate? tax = null;
            double? relTax = null;
            if (info.Role == TaskRole.Retained)
            {
                tax = info.HigherIsBetter ? change.Negate() : change;
                var t = new RetainedTax(info.Name, info.Metric, b.Score, f.Score, tax);
                relTax = t.Relative;
                taxes.Add(t);
            }
            else
            {
                if (target is not null) throw new ArgumentException($"only one target task is supported (got '{target}' and '{info.Name}')");
                target = info.Name;
                foreach (var (model, alt) in byModel)
                {
                    if (model == Finetuned) continue;
                    var gain = PairedBootstrap.Difference(alt.Items.Count, alt.ScoreOf, f.ScoreOf, resamples, seed + 2);
                    if (!info.HigherIsBetter) gain = gain.Negate();
                    var label = model == Base ? "the base model as is" : alternativeLabels.GetValueOrDefault(model, model);
                    gains.Add(new BaselineGain(label, info.Metric, alt.Score, f.Score, gain));
                }
            }
            tasks.Add(new TaskEvaluation(info, b.Items.Count, modelScores, change, tax, relTax, eceChange));
        }
        if (target is null) throw new ArgumentException("one task must be the target");
        var retained = tasks.Where(t => t.Task.Role == TaskRole.Retained).ToList();
        ForgettingSummary? forgetting = null;
        if (retained.Count > 0 && retained.All(t => t.Task.Metric == retained[0].Task.Metric))
        {
            // Two stages (base, finetuned): Chaudhry's forgetting max_{l<k} R_l,j − R_k,j reduces to base − finetuned,
            // and GEM's BWT to finetuned − base, averaged over the retained tasks (oriented: positive forgetting = worse).
            var taxMean = retained.Average(t => t.Tax!.Value);
            forgetting = new ForgettingSummary(taxMean, -taxMean, retained[0].Task.Metric);
        }
        var verdict = VerdictRule.Decide(new VerdictInputs(target, gains, taxes, calibration, cost), policy);
        return (tasks, gains, forgetting, verdict);
    }

    private static bool HasPredictions(TaskScores s) => s.Items.All(i => i.Predictions.Count > 0);
}
