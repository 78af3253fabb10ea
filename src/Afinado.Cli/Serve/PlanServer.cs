using System.Net;
using System.Text;
using System.Text.Json;
using System.Security.Cryptography;
using Afinado.Evaluation.Reporting;
using Afinado.Evaluation.Runs;
using Afinado.Planner.Catalog;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Afinado.Cli.Serve;

/// <summary>
/// The local page of <c>afinado serve</c>: <c>GET /</c> is a form over the plan's settings; <c>GET /api/plan?arg=…</c>
/// runs exactly <c>afinado plan ARGS --json</c> in-process and returns its stdout, so the API and the CLI give the same
/// bytes; <c>GET /api/export?format=deepspeed|accelerate|torchrun&amp;arg=…</c> runs <c>afinado export FORMAT ARGS</c> the
/// same way and returns the file it writes to stdout as a download; <c>GET /api/models</c> lists the catalog. It reads
/// nothing outside the model folders it was given (<c>--models</c>), writes nothing (<c>--plot</c> and <c>--out</c> are
/// refused), and binds to loopback unless told otherwise.
/// <para>With a runs folder (<c>--runs</c>): <c>GET /api/runs</c> lists the run folders in it, and <c>GET /api/report?run=…</c>
/// builds <c>afinado report</c>'s page for one run or compares several, into a folder of the server's own (deleted when it
/// stops), served under <c>/reports/KEY/</c>. Only run folders directly inside the runs folder are read.</para>
/// </summary>
public sealed class PlanServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string? _reports;

    private PlanServer(WebApplication app, string? reports)
    {
        _app = app;
        _reports = reports;
    }

    /// <summary>Flags that would write a file or leave the plan command.</summary>
    private static readonly HashSet<string> Refused = new(StringComparer.Ordinal) { "--plot", "--out", "--help", "-h", "-?", "--list-models", "--json" };

    /// <summary>The export formats and the file name each download gets (what a user would save it as).</summary>
    private static readonly Dictionary<string, (string File, string ContentType)> Exports = new(StringComparer.Ordinal)
    {
        ["deepspeed"] = ("ds_config.json", "application/json; charset=utf-8"),
        ["accelerate"] = ("accelerate_config.yaml", "application/yaml; charset=utf-8"),
        ["torchrun"] = ("torchrun.sh", "text/x-shellscript; charset=utf-8"),
    };

    /// <summary>Longest query accepted: plan arguments are short; anything longer is not a plan.</summary>
    private const int MaxQueryBytes = 16 * 1024;

    public static PlanServer Create(string host, int port, IReadOnlyList<string> modelFolders, string? runsFolder = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = 64 * 1024;
            k.Limits.MaxRequestLineSize = MaxQueryBytes + 1024;
            k.Listen(IPAddress.Parse(host), port);
        });
        var app = builder.Build();
        var roots = modelFolders.Select(f => Path.GetFullPath(f).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar).ToList();

        app.MapGet("/", () => Results.Content(Page(), "text/html; charset=utf-8"));
        app.MapGet("/api/models", () => Results.Json(ModelCatalog.Ids));
        app.MapGet("/api/plan", async (HttpContext ctx) =>
        {
            if (UnknownKey(ctx, "/api/plan", "arg") is { } unknown) return Error(unknown);
            var args = ctx.Request.Query["arg"].Select(a => a ?? "").ToList();
            if (Check(args, roots) is { } refusal) return Error(refusal);
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = await CliApp.RunAsync(["plan", .. args, "--json"], stdout, stderr);
            // Exit 0 fits, 3 fits no device: both are plans. 2 is bad input, named by the CLI's own message.
            return code is CliApp.ExitOk or CliApp.ExitDoesNotFit
                ? Results.Text(stdout.ToString(), "application/json; charset=utf-8", Encoding.UTF8)
                : Error(stderr.ToString().Trim());
        });
        app.MapGet("/api/export", async (HttpContext ctx) =>
        {
            if (UnknownKey(ctx, "/api/export", "format", "arg") is { } unknown) return Error(unknown);
            string format = ctx.Request.Query["format"].ToString();
            if (!Exports.TryGetValue(format, out var export))
                return Error($"format: \"{TerminalText.Escape(format)}\" is not an export format. Use deepspeed, accelerate or torchrun.");
            var args = ctx.Request.Query["arg"].Select(a => a ?? "").ToList();
            if (Check(args, roots) is { } refusal) return Error(refusal);
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = await CliApp.RunAsync(["export", format, .. args], stdout, stderr);
            // The per-GPU ledger and the assumptions go to stderr, the file to stdout; a layout that fits nothing is exit 3.
            if (code != CliApp.ExitOk) return Error(stderr.ToString().Trim());
            ctx.Response.Headers.ContentDisposition = $"attachment; filename=\"{export.File}\"";
            return Results.Text(stdout.ToString(), export.ContentType, Encoding.UTF8);
        });
        string? reports = runsFolder is null ? null : MapRuns(app, Path.GetFullPath(runsFolder));
        return new PlanServer(app, reports);
    }

    private static readonly JsonSerializerOptions SnakeCase = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>The runs browser's endpoints; returns the private folder its reports are built in.</summary>
    private static string MapRuns(WebApplication app, string runs)
    {
        string reports = Directory.CreateTempSubdirectory("afinado-serve-reports-").FullName;
        app.MapGet("/api/runs", () => Results.Json(RunListing.List(runs), SnakeCase));
        app.MapGet("/api/report", (HttpContext ctx) =>
        {
            if (UnknownKey(ctx, "/api/report", "run", "allow_different_base") is { } unknown) return Error(unknown);
            var names = ctx.Request.Query["run"].Select(n => n ?? "").ToList();
            if (names.Count == 0) return Error("run: name one run folder (or several to compare)");
            foreach (var n in names)
                if (!RunListing.IsRunName(runs, n))
                    return Error($"run: \"{TerminalText.Escape(n)}\" is not a run folder inside the runs folder");
            bool allow = ctx.Request.Query["allow_different_base"] == "1";
            // One folder per selection, named by a hash of it: the same selection reuses its report's folder.
            string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", names) + (allow ? "\nallow" : ""))))[..16];
            string dir = Path.Combine(reports, key);
            try
            {
                ReportBuilder.Build(names.Select(n => Path.Combine(runs, n)).ToList(), dir, allow);
            }
            catch (InputError e)
            {
                return Error(e.Render(CliFlags.Of));
            }
            return Results.Redirect($"/reports/{key}/{ReportBuilder.HtmlFile}");
        });
        app.MapGet("/reports/{key}/{**file}", (string key, string file) =>
        {
            // Only files inside that report's folder: no other part of the disk is reachable through this route.
            string root = Path.Combine(reports, key) + Path.DirectorySeparatorChar;
            string full = Path.GetFullPath(Path.Combine(root, file));
            if (!key.All(char.IsAsciiHexDigitLower) || !full.StartsWith(root, StringComparison.Ordinal) || !File.Exists(full)) return Results.NotFound();
            string type = Path.GetExtension(full) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".json" => "application/json; charset=utf-8",
                ".png" => "image/png",
                ".svg" => "image/svg+xml",
                _ => "application/octet-stream",
            };
            return Results.File(full, type);
        });
        return reports;
    }

    /// <summary>A query key the endpoint does not read, named with the shape it does read: <c>?model=X</c> would otherwise
    /// be ignored and answered with the default plan, a silent wrong answer.</summary>
    private static string? UnknownKey(HttpContext ctx, string path, params string[] known)
    {
        foreach (var key in ctx.Request.Query.Keys)
            if (!known.Contains(key, StringComparer.Ordinal))
                return $"{TerminalText.Escape(key)}: not a query key of {path}, which reads {string.Join(" and ", known)}" +
                    (known.Contains("arg") ? $" (the CLI's arguments, one per arg: {path}?{(path == "/api/export" ? "format=deepspeed&" : "")}arg=--model&arg=Qwen%2FQwen3-8B)" : "");
        return null;
    }

    private static IResult Error(string message) => Results.Json(new { error = message }, statusCode: StatusCodes.Status400BadRequest);

    /// <summary>Refuses file-writing flags and model paths outside the served folders (catalog ids are always fine).</summary>
    private static string? Check(IReadOnlyList<string> args, IReadOnlyList<string> roots)
    {
        if (args.Sum(a => a.Length) > MaxQueryBytes) return "the plan arguments are too long";
        for (int i = 0; i < args.Count; i++)
        {
            string flag = args[i].Split('=')[0];
            if (Refused.Contains(flag)) return $"{flag}: not available on the page (it writes files or leaves the plan)";
            if (flag != "--model") continue;
            string? value = args[i].Contains('=') ? args[i][(args[i].IndexOf('=') + 1)..] : i + 1 < args.Count ? args[i + 1] : null;
            if (value is null || ModelCatalog.Contains(value)) continue;
            string full = Path.GetFullPath(value);
            if (!roots.Any(r => (full + Path.DirectorySeparatorChar).StartsWith(r, StringComparison.Ordinal)))
                return $"--model: \"{TerminalText.Escape(value)}\" is not a catalog id nor inside a folder given to `afinado serve --models`";
        }
        return null;
    }

    private static string Page()
    {
        using var stream = typeof(PlanServer).Assembly.GetManifestResourceStream("Afinado.Cli.Serve.index.html")!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    public Task StartAsync() => _app.StartAsync();

    /// <summary>The address Kestrel bound (the port chosen when 0 was asked).</summary>
    public string Address => _app.Urls.First();

    /// <summary>Runs until <paramref name="cancel"/> (Ctrl+C) and then stops the server.</summary>
    public async Task WaitForShutdownAsync(CancellationToken cancel)
    {
        try { await Task.Delay(Timeout.Infinite, cancel); }
        catch (OperationCanceledException) { }
        await _app.StopAsync(CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        if (_reports is not null && Directory.Exists(_reports)) Directory.Delete(_reports, recursive: true);
    }
}
