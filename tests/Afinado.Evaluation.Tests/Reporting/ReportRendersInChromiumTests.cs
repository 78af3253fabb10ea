using System.Diagnostics;
using System.Text.Json;
using Afinado.Evaluation.Experiments;
using Afinado.Evaluation.Reporting;
using Afinado.Evaluation.Tests.Experiments;
using SkiaSharp;

namespace Afinado.Evaluation.Tests.Reporting;

public sealed class ReportRendersInChromiumTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("afinado-report-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Report_of_a_real_run_is_self_contained_has_json_twin_and_renders_non_blank_in_headless_chromium()
    {
        var run = Path.Combine(_dir, "run");
        SplitRuns.ClassSplit(new ClassSplitOptions { Training = new() { TrainPerClass = 100, BaseEpochs = 2, FinetuneEpochs = 1 }, TestPerClass = 50, Resamples = 200 }, run);
        var outDir = Path.Combine(_dir, "report");
        var doc = ReportBuilder.Build([run], outDir, allowDifferentBase: false);

        // Figures: loss curves, memory, gain/tax, one reliability diagram per task; each as PNG and SVG.
        Assert.Contains(doc.Figures, f => f.Name == "loss-curves");
        Assert.Contains(doc.Figures, f => f.Name.StartsWith("memory-"));
        Assert.Contains(doc.Figures, f => f.Name.StartsWith("gain-tax-"));
        Assert.Equal(2, doc.Figures.Count(f => f.Name.StartsWith("reliability-")));
        foreach (var f in doc.Figures)
        {
            Assert.True(new FileInfo(Path.Combine(outDir, f.Png)).Length > 5000);
            Assert.Contains("<svg xmlns=\"http://www.w3.org/2000/svg\"", File.ReadAllText(Path.Combine(outDir, f.Svg)));
        }
        var html = File.ReadAllText(Path.Combine(outDir, ReportBuilder.HtmlFile));
        Assert.Equal(doc.Figures.Count, CountOf(html, "src=\"data:image/png;base64,"));
        Assert.DoesNotContain("src=\"figures/", html); // nothing the page needs lives outside it
        Assert.Contains("Verdict:", html);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, ReportBuilder.JsonFile)));
        Assert.Equal("afinado.report/1", json.RootElement.GetProperty("schema").GetString());
        Assert.Equal(doc.Runs[0].Evaluation!.Verdict.Headline,
            json.RootElement.GetProperty("runs")[0].GetProperty("evaluation").GetProperty("verdict").GetProperty("headline").GetString());

        var shot = Path.Combine(_dir, "shot.png");
        Screenshot(Path.Combine(outDir, ReportBuilder.HtmlFile), shot);
        using var bitmap = SKBitmap.Decode(shot);
        Assert.NotNull(bitmap);
        int nonWhite = 0;
        var colours = new HashSet<uint>();
        for (int y = 0; y < bitmap.Height; y += 2)
            for (int x = 0; x < bitmap.Width; x += 2)
            {
                var p = bitmap.GetPixel(x, y);
                if (p.Red < 235 || p.Green < 235 || p.Blue < 235) nonWhite++;
                colours.Add((uint)p);
            }
        var fraction = nonWhite / (double)(bitmap.Width / 2 * (bitmap.Height / 2));
        Assert.True(fraction > 0.02, $"only {fraction:P2} of the screenshot is not white");
        Assert.True(colours.Count > 50, $"only {colours.Count} distinct colours: the page did not render text and figures");
    }

    private static int CountOf(string s, string needle)
    {
        int n = 0;
        for (int i = s.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = s.IndexOf(needle, i + 1, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>Headless Debian chromium (.ci/run installs it); no network, no GPU, a throwaway profile.</summary>
    internal static void Screenshot(string html, string png)
    {
        var profile = Directory.CreateTempSubdirectory("afinado-chromium-").FullName;
        try
        {
            var psi = new ProcessStartInfo("chromium")
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", $"--user-data-dir={profile}", $"--screenshot={png}", "--window-size=1200,1800", new Uri(html).AbsoluteUri })
                psi.ArgumentList.Add(a);
            Process p;
            try { p = Process.Start(psi)!; }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InvalidOperationException("chromium is not installed: apt-get install chromium (.ci/run installs it)", e);
            }
            using (p)
            {
                var stderr = p.StandardError.ReadToEndAsync();
                _ = p.StandardOutput.ReadToEndAsync();
                // A hang guard only: the screenshot takes seconds, a loaded machine may take minutes.
                if (!p.WaitForExit(TimeSpan.FromMinutes(15)))
                {
                    p.Kill(entireProcessTree: true);
                    throw new TimeoutException("chromium did not finish the screenshot in 15 min");
                }
                Assert.True(File.Exists(png), $"chromium exited {p.ExitCode} without a screenshot: {stderr.Result}");
            }
        }
        finally
        {
            Directory.Delete(profile, recursive: true);
        }
    }
}
