using System.CommandLine;
using Afinado.Planner.Catalog;

namespace Afinado.Cli.Commands;

/// <summary><c>afinado plan</c>: will this job fit? (Foundation stub of issue 2's planner: prints the architecture.)</summary>
public static class PlanCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Catalog id, config.json path or model folder.", DefaultValueFactory = _ => "meta-llama/Llama-3.1-8B" };
        var cmd = new Command("plan", "Predict the memory of a training or inference job and whether it fits a GPU.");
        cmd.Options.Add(model);
        cmd.SetAction(parse =>
        {
            var arch = ModelSource.Resolve(parse.GetValue(model)!);
            parse.InvocationConfiguration.Output.WriteLine($"{arch.Name}: {arch.ParameterCount:N0} parameters");
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
