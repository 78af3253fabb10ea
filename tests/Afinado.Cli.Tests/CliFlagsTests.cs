using System.CommandLine;
using System.Reflection;
using Afinado.Evaluation;
using Afinado.Planner.Memory;
using Afinado.Planner.Parallel;
using Afinado.Training.Loop;

namespace Afinado.Cli.Tests;

/// <summary>
/// The libraries speak of their own parameters and the CLI renders them as flags (<see cref="CliFlags"/>): every
/// parameter a library declares must render as a flag some <c>afinado</c> command has, so renaming a flag (or a
/// parameter) without the map breaks here instead of in a message that points the user at a flag that is not there.
/// </summary>
public class CliFlagsTests
{
    private static readonly Assembly[] Libraries = [typeof(Job).Assembly, typeof(TrainConfig).Assembly, typeof(EvalParameters).Assembly];

    /// <summary>Every <see cref="InputParameter"/> the libraries declare: the public static fields of their parameter classes.</summary>
    private static IEnumerable<(Type Owner, string Field, InputParameter Parameter)> DeclaredParameters() =>
        from library in Libraries
        from type in library.GetTypes()
        from field in type.GetFields(BindingFlags.Public | BindingFlags.Static)
        where field.FieldType == typeof(InputParameter)
        select (type, field.Name, (InputParameter)field.GetValue(null)!);

    private static HashSet<string> AllFlags(Command command)
    {
        var flags = command.Options.SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet();
        foreach (var sub in command.Subcommands) flags.UnionWith(AllFlags(sub));
        return flags;
    }

    [Fact]
    public void Every_library_parameter_renders_as_a_flag_of_some_command()
    {
        var flags = AllFlags(CliApp.BuildRoot());
        var declared = DeclaredParameters().ToList();
        Assert.True(declared.Count > 100, $"only {declared.Count} parameters found");
        Assert.Empty(declared.Where(d => !flags.Contains(CliFlags.Of(d.Parameter))).Select(d => $"{d.Owner.Name}.{d.Field} ({d.Parameter}) -> {CliFlags.Of(d.Parameter)}"));
    }

    [Fact]
    public void Each_library_declares_its_parameters()
    {
        var declared = DeclaredParameters().ToList();
        Assert.All(Libraries, library => Assert.Contains(declared, d => d.Owner.Assembly == library));
    }

    [Theory]
    [InlineData("grad_accumulation", "--grad-accum")]
    [InlineData("gradient_accumulation", "--grad-accum")]
    [InlineData("sequence_length", "--seq")]
    [InlineData("tensor_parallel", "--tp")]
    [InlineData("weights_dtype", "--weights-dtype")]
    [InlineData("gpu_memory", "--gpu-memory")]
    public void Parameters_render_as_the_flags_the_user_types(string name, string flag) =>
        Assert.Equal(flag, CliFlags.Of(new InputParameter(name)));

    [Fact]
    public void An_error_renders_its_parameters_as_flags_and_its_message_keeps_the_neutral_names()
    {
        var e = new InputError(JobParameters.Precision, $"the CPU computes in fp32, got bf16", $"Use {JobParameters.Precision} fp32 with {Planner.Fit.PlanParameters.Gpu} cpu.");
        Assert.Equal("precision: the CPU computes in fp32, got bf16. Use precision fp32 with gpu cpu.", e.Message);
        Assert.Equal("--precision: the CPU computes in fp32, got bf16. Use --precision fp32 with --gpu cpu.", e.Render(CliFlags.Of));
        Assert.Equal(JobParameters.Precision, e.Parameter);
    }

    [Fact]
    public void A_change_renders_as_flags_and_values()
    {
        var change = new ParameterChange(new Setting(JobParameters.Checkpointing, "full"), new Setting(TrainParameters.GradientCheckpointing), new Setting(LayoutParameters.TensorParallel, "2"));
        Assert.Equal("--checkpointing full --gradient-checkpointing --tp 2", change.Render(CliFlags.Of));
    }
}
