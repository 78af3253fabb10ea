using System.CommandLine;
using System.Text.Json;
using Afinado.Planner;
using Afinado.Training.LearningRules.Toy;

namespace Afinado.Cli.Commands.Bench;

/// <summary>
/// <c>afinado bench guided-es-toy</c>: the Guided ES paper's least-squares toy (Fig. 1b). Prints the final losses of
/// guided_es, vanilla_es and sgd_biased, writes them with the curves to guided-es-toy.json and plots guided-es-toy.png.
/// </summary>
public static class GuidedEsToyCommand
{
    public const string Schema = "afinado.bench.guided-es-toy/1";

    public static Command Build()
    {
        var steps = new Option<int>("--steps") { Description = "Optimisation steps per method (paper: 10000).", DefaultValueFactory = _ => 10_000 };
        var outDir = new Option<string>("--out") { Description = "Folder for guided-es-toy.json and guided-es-toy.png.", DefaultValueFactory = _ => "runs/bench/guided-es-toy" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON (progress goes to stderr)." };
        var seed = new Option<int>("--seed") { Description = "Seed for A, b, the bias direction and the ES noise.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("guided-es-toy", "Reproduce Guided ES vs vanilla ES vs SGD on a biased gradient (least squares, n=1000, m=2000).");
        cmd.Options.Add(steps);
        cmd.Options.Add(outDir);
        cmd.Options.Add(json);
        cmd.Options.Add(seed);
        cmd.SetAction(parse =>
        {
            int n = InputRange.Whole("--steps", parse.GetValue(steps), 1, 100_000_000, "the paper uses 10000");
            int s = InputRange.Whole("--seed", parse.GetValue(seed), 0, int.MaxValue);
            var dir = parse.GetValue(outDir)!;
            OutputPaths.Folder("--out", dir);
            var output = parse.InvocationConfiguration.Output;
            var progress = new ProgressLines(parse.InvocationConfiguration.Error);

            var options = new GuidedEsToyOptions { Steps = n, Seed = (ulong)s };
            var result = GuidedEsToy.Run(options, new Progress<(string Method, int Step)>(p => progress.Report(p.Method, $"step {p.Step}/{n}")));

            Directory.CreateDirectory(dir);
            var pngPath = Path.Combine(dir, "guided-es-toy.png");
            LossCurvePlot.Save(pngPath, $"Guided ES toy: least squares n={options.N}, m={options.M}, biased surrogate", result.Curves,
                result.OptimalLoss, "log10( f(x) - f(x*) )");
            var doc = ToJson(result, pngPath);
            var text = JsonSerializer.Serialize(doc, FiniteJson.AddTo(new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllText(Path.Combine(dir, "guided-es-toy.json"), text);

            if (parse.GetValue(json)) output.WriteLine(text);
            else
            {
                output.WriteLine($"Guided ES toy ({n} steps, f* = {result.OptimalLoss:F6}):");
                foreach (var m in new[] { GuidedEsToyResult.GuidedEs, GuidedEsToyResult.VanillaEs, GuidedEsToyResult.SgdBiased })
                    output.WriteLine($"  {m,-11} final loss {result.Final(m):F6}  (f - f* = {result.Final(m) - result.OptimalLoss:E3}, {result.ForwardPasses[m]} forward passes, {result.Seconds[m]:F1} s)");
                output.WriteLine($"Wrote {Path.Combine(dir, "guided-es-toy.json")} and {pngPath}");
            }
            return CliApp.ExitOk;
        });
        return cmd;
    }

    private static Dictionary<string, object> ToJson(GuidedEsToyResult r, string png)
    {
        var methods = new[] { GuidedEsToyResult.GuidedEs, GuidedEsToyResult.VanillaEs, GuidedEsToyResult.SgdBiased };
        int stride = Math.Max(1, r.Options.Steps / 1000);
        return new Dictionary<string, object>
        {
            ["schema"] = Schema,
            ["problem"] = new { n = r.Options.N, m = r.Options.M, loss = "0.5*|Ax-b|^2/m", surrogate = "grad f + unit_bias*|grad f|", seed = r.Options.Seed },
            ["hyperparameters"] = new
            {
                steps = r.Options.Steps, sigma = r.Options.Sigma, alpha = r.Options.Alpha, beta = r.Options.Beta, k = r.Options.SubspaceDim,
                pairs = r.Options.Pairs, es_lr = r.Options.EsLearningRate, sgd_lr = r.Options.SgdLearningRate,
            },
            ["optimal_loss"] = r.OptimalLoss,
            ["final_loss"] = methods.ToDictionary(m => m, r.Final),
            ["final_excess_loss"] = methods.ToDictionary(m => m, m => r.Final(m) - r.OptimalLoss),
            ["forward_passes"] = methods.ToDictionary(m => m, m => r.ForwardPasses[m]),
            ["seconds"] = methods.ToDictionary(m => m, m => Math.Round(r.Seconds[m], 2)),
            ["guided_es_below_both"] = r.Final(GuidedEsToyResult.GuidedEs) < r.Final(GuidedEsToyResult.VanillaEs)
                                       && r.Final(GuidedEsToyResult.GuidedEs) < r.Final(GuidedEsToyResult.SgdBiased),
            ["curve_stride"] = stride,
            ["curves"] = methods.ToDictionary(m => m, m => r.Curves[m].Where((_, i) => i % stride == 0 || i == r.Curves[m].Length - 1).ToArray()),
            ["plot"] = png,
        };
    }
}
