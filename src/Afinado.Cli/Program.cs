using Afinado.Cli;

return await CliApp.RunAsync(args);
