using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Afinado.Cli.Tests;

/// <summary>
/// Afinado installed as users install it (README: Install as a tool): the CLI packed as a .NET tool, installed with
/// <c>dotnet tool install --tool-path</c> from the pack folder, and the installed <c>afinado</c> run. The package must carry
/// every native library (libtorch, Tokenizers.DotNet) and the Debian 12 patched libLibTorchSharp.so, not the shipped one.
/// </summary>
public class ToolPackageTests(ITestOutputHelper log)
{
    /// <summary>Guards against a hung process only: packing compresses ~650 MB (seconds to a minute; a loaded machine may take several).</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(30);

    /// <summary>The package version: <c>Version</c> in Afinado.Cli.csproj, read back from the CLI assembly this test runs against.</summary>
    private static string PackageVersion => CliApp.Version.Split('+')[0];

    [Fact]
    public async Task Version_option_prints_the_package_version_and_the_commit_when_known()
    {
        var (code, stdout, stderr) = await CliRun.Run("--version");
        Assert.True(code == 0, stderr);
        Assert.Equal(CliApp.Version + Environment.NewLine, stdout);
        Assert.Matches(new Regex(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9a-f]{40})?$"), CliApp.Version);
        Assert.Equal(typeof(CliApp).Assembly.GetName().Version!.ToString(3), PackageVersion.Split('-')[0]);
    }

    [Fact]
    public async Task Packed_tool_installs_from_the_pack_folder_and_runs()
    {
        var work = Directory.CreateTempSubdirectory("afinado-tool-").FullName;
        try
        {
            string packDir = Path.Combine(work, "pack"), publishDir = Path.Combine(work, "publish"), toolDir = Path.Combine(work, "tool");
            var sw = Stopwatch.StartNew();

            // Pack the build this test runs against (same configuration, no rebuild), publishing into the temp folder so
            // the repository's bin/ gets no second copy of libtorch.
            var configuration = typeof(CliApp).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
            var root = RepoRoot(); // the working directory too, so the repository's global.json picks the SDK
            var project = Path.Combine(root, "src", "Afinado.Cli", "Afinado.Cli.csproj");
            var pack = await Run("dotnet", root, "pack", project, "--no-build", "-c", configuration, "-o", packDir,
                $"-p:PublishDir={publishDir}{Path.DirectorySeparatorChar}", "--disable-build-servers", "--nologo");
            Assert.True(pack.Code == 0, $"dotnet pack failed:\n{pack.Out}\n{pack.Err}");
            var nupkg = Path.Combine(packDir, $"Afinado.{PackageVersion}.nupkg");
            Assert.True(File.Exists(nupkg), $"no {nupkg}; the pack folder holds: {string.Join(", ", Directory.GetFiles(packDir).Select(Path.GetFileName))}");
            log.WriteLine($"pack: {sw.Elapsed.TotalSeconds:F1} s, {new FileInfo(nupkg).Length / 1e6:F1} MB");

            // Only the pack folder as a source: no network, and no other feed can answer for "Afinado".
            var nugetConfig = Path.Combine(work, "nuget.config");
            File.WriteAllText(nugetConfig, """
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                  </packageSources>
                </configuration>
                """);
            sw.Restart();
            var install = await Run("dotnet", work, "tool", "install", "--tool-path", toolDir, "--configfile", nugetConfig,
                "--add-source", packDir, "Afinado", "--version", PackageVersion);
            Assert.True(install.Code == 0, $"dotnet tool install failed:\n{install.Out}\n{install.Err}");
            log.WriteLine($"install: {sw.Elapsed.TotalSeconds:F1} s");

            var afinado = Path.Combine(toolDir, "afinado");
            var version = await Run(afinado, work, "--version");
            Assert.True(version.Code == 0, version.Err);
            Assert.Equal(CliApp.Version, version.Out.Trim());

            var plan = await Run(afinado, work, "plan", "--json");
            Assert.True(plan.Code == 0, plan.Err);
            using (var json = JsonDocument.Parse(plan.Out))
                Assert.StartsWith("afinado.plan/", json.RootElement.GetProperty("schema").GetString());

            // The recipe's base model travelled with the tool: a recipe trains outside the repository — here inside a user's
            // own git repository, whose commit says nothing about the code that ran: the manifest names the tool's version.
            Assert.Equal(0, (await Run("git", work, "init", "-q")).Code);
            Assert.Equal(0, (await Run("git", work, "-c", "user.email=u@example.com", "-c", "user.name=u", "commit", "-q", "--allow-empty", "-m", "user")).Code);
            var recipe = await Run(afinado, work, "train", "--recipe", "fortunes-es", "--max-steps", "1", "--eval-batches", "1",
                "--threads", "1", "--out", Path.Combine(work, "recipe-run"));
            Assert.True(recipe.Code == 0, recipe.Err);
            using (var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(work, "recipe-run", "manifest.json"))))
                Assert.Equal("assembly:" + CliApp.Version, manifest.RootElement.GetProperty("code_version").GetString());

            // The natives travelled with the tool: the installed libLibTorchSharp.so is the patched copy of this build
            // (the test's own output holds the same patched file), and the Tokenizers.DotNet library is there.
            var installed = Directory.GetFiles(Path.Combine(toolDir, ".store"), "*", SearchOption.AllDirectories);
            string Installed(string name) => Assert.Single(installed, f => Path.GetFileName(f) == name);
            Assert.Equal(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")),
                File.ReadAllBytes(Installed("libLibTorchSharp.so")));
            Installed("libhf_tokenizers.so");
            Installed("libtorch_cpu.so");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Afinado.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Afinado.slnx above {AppContext.BaseDirectory}");
    }

    private static async Task<(int Code, string Out, string Err)> Run(string file, string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // Waits for the exit; the limit only turns a hang into a failure instead of a stuck test run.
        using var limit = new CancellationTokenSource(HangGuard);
        try { await p.WaitForExitAsync(limit.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish");
        }
        return (p.ExitCode, await stdout, await stderr);
    }
}
