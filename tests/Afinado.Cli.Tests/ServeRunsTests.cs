using System.Net;
using System.Text.Json;
using Afinado.Cli.Serve;

namespace Afinado.Cli.Tests;

/// <summary>
/// <c>afinado serve --runs DIR</c>: the page lists the run folders inside DIR (an unreadable one is shown with its
/// problem, not hidden), opens <c>afinado report</c>'s page for one run or a comparison of several, built in the server's
/// own folder, and reads no folder that is not a run directly inside DIR.
/// </summary>
public sealed class ServeRunsTests : IAsyncLifetime
{
    private readonly string _runs = Directory.CreateTempSubdirectory("afinado-serve-runs-").FullName;
    private PlanServer _server = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        Run("a", 'a', 1.7, 1.2);
        Run("b", 'a', 1.8, 1.1);
        Run("c", 'c', 1.9, 1.5);
        Directory.CreateDirectory(Path.Combine(_runs, "broken"));
        File.WriteAllText(Path.Combine(_runs, "broken", "manifest.json"), "{\"schema\": \"afinado.manifest/1\", \"base_weights\": {");
        Directory.CreateDirectory(Path.Combine(_runs, "notes"));
        _server = PlanServer.Create("127.0.0.1", 0, [], _runs);
        await _server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_runs, true);
    }

    /// <summary>A finished run folder as afinado train writes it (manifest and summary), from base weights <paramref name="baseHash"/>.</summary>
    private void Run(string name, char baseHash, double before, double after)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_runs, name)).FullName;
        var manifest = $$"""
            {"schema": "afinado.manifest/1",
             "base_weights": [{"path": "base-{{baseHash}}", "sha256": "{{new string(baseHash, 64)}}", "bytes": 10}],
             "data_files": [], "data_sha256": "{{new string('e', 64)}}", "config_sha256": "{{new string('d', 64)}}", "code_version": "abc1234", "seed": 1,
             "created_utc": "2026-11-26T00:00:00Z"}
            """;
        File.WriteAllText(Path.Combine(dir, "manifest.json"), manifest);
        File.WriteAllText(Path.Combine(dir, "summary.json"), $$"""
            {"schema": "afinado.run/1", "status": "completed", "method": "lora", "rule": "backprop", "max_steps": 3, "forward_passes": 3, "train_positions": 300,
             "total_parameters": 1000, "trainable_parameters": 100, "steps": 3, "wall_seconds": 1.5, "manifest": {{manifest}},
             "initial_validation_loss": {{before}}, "final_validation_loss": {{after}}, "final_train_loss": {{after - 0.1}},
             "loss_curve": [{"step": 1, "train_loss": 2.0}, {"step": 2, "train_loss": 1.5, "validation_loss": 1.7}, {"step": 3, "train_loss": 1.2}]}
            """);
    }

    [Fact]
    public async Task The_runs_folder_is_listed_with_each_runs_result_and_problems()
    {
        using var doc = JsonDocument.Parse(await _http.GetStringAsync(_server.Address + "/api/runs"));
        var runs = doc.RootElement.EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Equal(["a", "b", "broken", "c"], runs.Keys.Order());
        Assert.Equal("completed", runs["a"].GetProperty("status").GetString());
        Assert.Equal(1.7, runs["a"].GetProperty("initial_validation_loss").GetDouble());
        Assert.Equal(1.2, runs["a"].GetProperty("final_validation_loss").GetDouble());
        Assert.Contains("manifest.json", runs["broken"].GetProperty("problem").GetString());
    }

    [Fact]
    public async Task A_report_is_built_for_one_run_and_for_a_comparison()
    {
        var one = await _http.GetAsync(_server.Address + "/api/report?run=a");
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.EndsWith("/report.html", one.RequestMessage!.RequestUri!.AbsolutePath);
        Assert.Contains("<html", await one.Content.ReadAsStringAsync());
        string folder = one.RequestMessage.RequestUri.AbsolutePath[..^"report.html".Length];
        using (var json = JsonDocument.Parse(await _http.GetStringAsync(_server.Address + folder + "report.json")))
            Assert.Equal("afinado.report/1", json.RootElement.GetProperty("schema").GetString());
        var figure = await _http.GetAsync(_server.Address + folder + "figures/loss-curves.png");
        Assert.Equal("image/png", figure.Content.Headers.ContentType?.MediaType);

        var both = await _http.GetAsync(_server.Address + "/api/report?run=a&run=b");
        Assert.Equal(HttpStatusCode.OK, both.StatusCode);
        Assert.NotEqual(folder, both.RequestMessage!.RequestUri!.AbsolutePath[..^"report.html".Length]);
        // Runs from different base weights are compared only when asked, as `afinado report --allow-different-base`.
        var different = await _http.GetAsync(_server.Address + "/api/report?run=a&run=c");
        Assert.Equal(HttpStatusCode.BadRequest, different.StatusCode);
        Assert.Contains("--allow-different-base", await different.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync(_server.Address + "/api/report?run=a&run=c&allow_different_base=1")).StatusCode);
    }

    [Theory]
    [InlineData("/api/report?run=..%2Fa")]
    [InlineData("/api/report?run=notes")]
    [InlineData("/api/report?run=nope")]
    [InlineData("/api/report")]
    [InlineData("/api/report?runs=a")]
    public async Task Only_run_folders_inside_the_runs_folder_are_read(string url)
    {
        var response = await _http.GetAsync(_server.Address + url);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("run", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/reports/zz/report.html")]
    [InlineData("/reports/0123456789abcdef/..%2F..%2Fetc%2Fpasswd")]
    [InlineData("/reports/0123456789abcdef/report.html")]
    public async Task Report_files_come_only_from_built_reports(string url) =>
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync(_server.Address + url)).StatusCode);

    [Fact]
    public async Task The_page_shows_the_runs()
    {
        string dom = await ServeCommandTests.Chromium(_server.Address + "/");
        Assert.Contains("<div id=\"runs\">", dom);
        Assert.Contains("<td>a</td><td>completed</td><td>lora</td>", dom);
        Assert.Contains("1.700 → 1.200", dom);
        Assert.Contains("<td>broken</td><td>unreadable</td>", dom);
    }
}
