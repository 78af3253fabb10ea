using System.CommandLine;
using System.Net;
using Afinado.Cli.Serve;

namespace Afinado.Cli.Commands;

/// <summary><c>afinado serve</c>: the plan as a local page (see <see cref="PlanServer"/>), until Ctrl+C.</summary>
public static class ServeCommand
{
    public static Command Build()
    {
        var host = new Option<string>("--host") { Description = "Address to bind: loopback by default; another address exposes the page to that network.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port (0 picks a free one).", DefaultValueFactory = _ => 8765 };
        var models = new Option<string[]>("--models") { Description = "Folders whose model folders the page may plan (--model PATH inside them); catalog ids always work.", AllowMultipleArgumentsPerToken = true };
        var runs = new Option<string?>("--runs") { Description = "A folder of run folders (afinado train --out): the page lists them and opens their report, or compares several." };
        var cmd = new Command("serve", "A local page for `plan`: pick a model and settings, see the ledger, the verdict per GPU and the fixes; with --runs, browse runs and their reports.");
        cmd.Options.Add(host);
        cmd.Options.Add(port);
        cmd.Options.Add(models);
        cmd.Options.Add(runs);
        cmd.SetAction(async (parse, cancel) =>
        {
            string h = parse.GetValue(host)!;
            if (!IPAddress.TryParse(h, out _))
                throw new InputError("--host", $"\"{TerminalText.Escape(h)}\" is not an IP address", "Use 127.0.0.1 (default), ::1, or the address of an interface.");
            int p = parse.GetValue(port);
            InputRange.Whole("--port", p, 0, 65535, "0 picks a free port");
            var folders = parse.GetValue(models) ?? [];
            foreach (var f in folders)
                if (!Directory.Exists(f))
                    throw new InputError("--models", $"\"{TerminalText.Escape(f)}\" is not a folder", "Give folders that hold model folders (config.json, safetensors headers).");
            string? runsFolder = parse.GetValue(runs);
            if (runsFolder is not null && !Directory.Exists(runsFolder))
                throw new InputError("--runs", $"\"{TerminalText.Escape(runsFolder)}\" is not a folder", "Give the folder that holds your run folders (what afinado train --out wrote).");
            await using var server = PlanServer.Create(h, p, folders, runsFolder);
            await server.StartAsync();
            await parse.InvocationConfiguration.Output.WriteLineAsync($"afinado serve: {server.Address} (Ctrl+C stops)");
            await server.WaitForShutdownAsync(cancel);
            return CliApp.ExitOk;
        });
        return cmd;
    }
}
