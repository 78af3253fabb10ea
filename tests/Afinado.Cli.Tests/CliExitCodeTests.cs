namespace Afinado.Cli.Tests;

public class CliExitCodeTests
{
    [Fact]
    public async Task Unknown_model_is_bad_input_with_exit_2_and_no_stack_trace()
    {
        var err = new StringWriter();
        var code = await CliApp.RunAsync(["plan", "--model", "no/such-model"], new StringWriter(), err);
        Assert.Equal(CliApp.ExitBadInput, code);
        Assert.Contains("--model", err.ToString());
        Assert.DoesNotContain("   at ", err.ToString());
    }
}
