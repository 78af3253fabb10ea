using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Afinado.Cli;
using Afinado.Cli.Serve;
using Afinado.Planner.Catalog;

namespace Afinado.Cli.Tests;

/// <summary>
/// <c>afinado serve</c> on a real Kestrel bound to loopback: the API returns the bytes of <c>plan --json</c>, bad input
/// comes back as the CLI's message naming the flag, the page reads no model outside the folders it was given, and the
/// page, rendered by headless chromium, shows the CLI's numbers.
/// </summary>
public sealed class ServeCommandTests : IAsyncLifetime
{
    private readonly string _models = Directory.CreateTempSubdirectory("afinado-serve-models-").FullName;
    private PlanServer _server = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_models, "mine")).FullName;
        File.WriteAllText(Path.Combine(folder, "config.json"), ModelCatalog.ConfigJson("Qwen/Qwen3-0.6B"));
        _server = PlanServer.Create("127.0.0.1", 0, [_models]);
        await _server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_models, true);
    }

    private static string Query(params string[] args) => "/api/plan?" + string.Join("&", args.Select(a => "arg=" + Uri.EscapeDataString(a)));

    private static async Task<string> Cli(params string[] args)
    {
        var o = new StringWriter();
        int code = await CliApp.RunAsync(["plan", .. args, "--json"], o, new StringWriter());
        Assert.True(code is CliApp.ExitOk or CliApp.ExitDoesNotFit);
        return o.ToString();
    }

    [Theory]
    [InlineData("")]
    [InlineData("--model Qwen/Qwen3-8B --method qlora --seq 4096 --gpu rtx4090 --gpu t4")]
    [InlineData("--model openai/gpt-oss-20b --task infer --seq 1024 --context 8192 --gpu h100")]
    public async Task The_api_returns_the_bytes_of_plan_json(string line)
    {
        string[] args = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var response = await _http.GetAsync(_server.Address + Query(args));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(await Cli(args), await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Bad_input_names_the_flag_and_nothing_outside_the_given_folders_is_read()
    {
        async Task<string> Refused(params string[] args)
        {
            var response = await _http.GetAsync(_server.Address + Query(args));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return doc.RootElement.GetProperty("error").GetString()!;
        }
        Assert.Contains("--batch", await Refused("--batch", "0"));
        Assert.Contains("--plot", await Refused("--curve", "seq", "--plot", "/tmp/x.png"));
        Assert.Contains("--model", await Refused("--model", "/etc"));
        Assert.Contains("--model", await Refused("--model=" + Path.GetTempPath()));
        // A folder inside --models plans like the CLI.
        string mine = Path.Combine(_models, "mine");
        var ok = await _http.GetAsync(_server.Address + Query("--model", mine, "--gpu", "h100"));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(await Cli("--model", mine, "--gpu", "h100"), await ok.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("deepspeed", "ds_config.json")]
    [InlineData("accelerate", "accelerate_config.yaml")]
    [InlineData("torchrun", "torchrun.sh")]
    public async Task Export_downloads_exactly_what_the_cli_writes(string format, string file)
    {
        string[] args = ["--model", "meta-llama/Llama-3.1-8B", "--method", "lora", "--gpus", "4", "--fsdp", "full", "--checkpointing", "full"];
        if (format == "deepspeed") args = [.. args[..4], "--gpus", "4", "--zero", "3", "--checkpointing", "full"];
        var o = new StringWriter();
        Assert.Equal(CliApp.ExitOk, await CliApp.RunAsync(["export", format, .. args], o, new StringWriter()));
        var response = await _http.GetAsync(_server.Address + $"/api/export?format={format}&" + Query(args)["/api/plan?".Length..]);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(o.ToString(), await response.Content.ReadAsStringAsync());
        Assert.Equal(file, response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
    }

    [Fact]
    public async Task Export_refuses_an_unknown_format_and_file_writing_flags()
    {
        async Task<string> Refused(string url)
        {
            var response = await _http.GetAsync(_server.Address + url);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return doc.RootElement.GetProperty("error").GetString()!;
        }
        Assert.Contains("format", await Refused("/api/export?format=xls&arg=--gpus&arg=2"));
        // A key the endpoint does not read is refused, not ignored (it used to answer the default plan).
        string unknown = await Refused("/api/plan?model=openai/gpt-oss-20b");
        Assert.Contains("model: not a query key of /api/plan", unknown);
        Assert.Contains("arg=--model&arg=", unknown);
        Assert.Contains("seq: not a query key of /api/export", await Refused("/api/export?format=deepspeed&seq=4096"));
        Assert.Contains("--out", await Refused("/api/export?format=deepspeed&arg=--out&arg=/tmp/ds.json"));
        Assert.Contains("--gpus", await Refused("/api/export?format=deepspeed&arg=--gpus&arg=0"));
    }

    [Fact]
    public async Task The_page_shows_the_per_gpu_ledger_and_links_the_exports()
    {
        string[] args = ["--model", "Qwen/Qwen3-8B", "--method", "lora", "--gpus", "4", "--fsdp", "full", "--gpu", "rtx4090"];
        using var plan = JsonDocument.Parse(await Cli(args));
        var parallel = plan.RootElement.GetProperty("parallel");
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        Assert.Contains($"Per GPU: <span id=\"layout\">{parallel.GetProperty("description").GetString()}, peak {parallel.GetProperty("gpu_peak_bytes").GetDouble() / (1L << 30):F2} GiB", dom);
        Assert.Contains(parallel.GetProperty("gpu_components")[0].GetProperty("name").GetString()!, dom);
        // The download links carry the same job and layout flags (the curve's would not be export flags).
        Assert.Contains("href=\"/api/export?format=accelerate&amp;arg=--model&amp;arg=Qwen%2FQwen3-8B", dom);
        Assert.Contains("arg=--fsdp&amp;arg=full", dom);
    }

    [Fact]
    public async Task A_shared_url_with_images_shows_the_image_step_as_the_cli_plans_it()
    {
        string[] args = ["--model", "Qwen/Qwen2.5-VL-7B-Instruct", "--images", "1", "--image-size", "1024x1024", "--gpu", "h100"];
        using var plan = JsonDocument.Parse(await Cli(args));
        double total = plan.RootElement.GetProperty("total_bytes").GetDouble() / (1L << 30);
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        Assert.Contains($"total {total:F2} GiB", dom);
        Assert.Contains("vision tower: saved activations", dom);
        // The page sent the image flags it was given: only an image step has these.
        Assert.Contains("warning: image inputs planned", dom);
    }

    [Fact]
    public async Task The_page_lists_the_catalog_and_holds_the_form()
    {
        var ids = JsonSerializer.Deserialize<string[]>(await _http.GetStringAsync(_server.Address + "/api/models"))!;
        // Without --runs there is no runs browser.
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync(_server.Address + "/api/runs")).StatusCode);
        Assert.Contains("meta-llama/Llama-3.1-8B", ids);
        var page = await _http.GetStringAsync(_server.Address + "/");
        Assert.Contains("<form id=\"form\">", page);
        Assert.Contains("name=\"--seq\"", page);
        // Every choice a select offers is a value plan accepts (offload is sent only with a sharding, so it is left out).
        foreach (System.Text.RegularExpressions.Match select in System.Text.RegularExpressions.Regex.Matches(page, "<select name=\"(--[a-z-]+)\">(.*?)</select>"))
        {
            string flag = select.Groups[1].Value;
            if (flag == "--offload") continue;
            foreach (System.Text.RegularExpressions.Match option in System.Text.RegularExpressions.Regex.Matches(select.Groups[2].Value, "<option(?: value=\"([^\"]*)\")?>([^<]*)</option>"))
            {
                string value = option.Groups[1].Success ? option.Groups[1].Value : option.Groups[2].Value;
                if (value.Length == 0) continue;
                // The page sends its freeze patterns with method freeze.
                string[] freeze = value == "freeze" ? ["--freeze", "model.embed_tokens"] : [];
                // The page sends the vision tower's choice only with images and full or freeze finetuning of a multimodal model.
                string[] job = flag == "--vision-tower"
                    ? ["--model", "google/gemma-3-4b-it", "--method", "full", "--images", "1", "--seq", "1024"]
                    : ["--model", "Qwen/Qwen3-30B-A3B", "--seq", "128"];
                var (code, _, err) = await CliRun.Run(["plan", .. job, flag, value, .. freeze]);
                Assert.True(code != CliApp.ExitBadInput, $"{flag} {value}: {err}");
            }
        }
    }

    [Fact]
    public async Task Headless_chromium_shows_the_clis_numbers_for_a_shared_url()
    {
        string[] args = ["--model", "Qwen/Qwen3-8B", "--method", "lora", "--gpu", "h100"];
        using var plan = JsonDocument.Parse(await Cli(args));
        double total = plan.RootElement.GetProperty("total_bytes").GetDouble() / (1L << 30);
        string url = _server.Address + "/" + Query(args)[("/api/plan".Length)..];
        string dom = await Chromium(url);
        Assert.Contains($"total {total:F2} GiB", dom);
        Assert.Contains("fits", dom);
        Assert.Contains("weights: frozen", dom);
        // The job fits the first GPU, so the fixes table says no change is needed rather than staying blank.
        Assert.Contains("none needed: the job fits H100 SXM 80GB", dom);
    }

    [Fact]
    public async Task The_page_shows_the_plans_warnings_as_the_cli_prints_them()
    {
        // Llama 4's all-linear leaves the router out (its forward returns a tuple PEFT's LoRA layer cannot add to).
        string[] args = ["--model", "meta-llama/Llama-4-Scout-17B-16E", "--method", "qlora", "--seq", "512", "--gpu", "h200"];
        using var plan = JsonDocument.Parse(await Cli(args));
        var warnings = plan.RootElement.GetProperty("model").GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!).ToList();
        string warning = Assert.Single(warnings, w => w.StartsWith("all-linear leaves out the MoE router", StringComparison.Ordinal));
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        // The DOM dump escapes only &, < and > in text: compare the warning up to its first quote.
        Assert.Contains("warning: " + warning[..warning.IndexOfAny(['\'', '"'])], dom);
        // Scout is multimodal: the page says, as the CLI does, that its plans are text steps.
        Assert.Contains(warnings, w => w.StartsWith("a multimodal model, planned for a text step", StringComparison.Ordinal));
        Assert.Contains("warning: a multimodal model, planned for a text step", dom);
        // A bitsandbytes QLoRA plan also says what prepare_model_for_kbit_training would add, with the CLI's figure.
        double kbit = plan.RootElement.GetProperty("kbit_prep_total_bytes").GetDouble() / (1L << 30);
        Assert.Contains($"with --kbit-prep this job's total is {kbit:F2} GiB", dom);
    }

    [Fact]
    public async Task The_page_shows_the_plans_notes_and_says_when_no_fix_fits()
    {
        // gpt-oss-20b: eager attention (no SDPA path for its sinks) and, on a 24 GB card, no change that fits.
        string[] args = ["--model", "openai/gpt-oss-20b", "--method", "lora", "--gpu", "rtx4090"];
        using var plan = JsonDocument.Parse(await Cli(args));
        string note = plan.RootElement.GetProperty("attention_note").GetString()!;
        Assert.DoesNotContain(plan.RootElement.GetProperty("fixes").EnumerateArray(), f => f.GetProperty("fits").GetBoolean());
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        // The DOM dump escapes only &, < and > in text: compare the note up to its first quote.
        Assert.Contains("note: " + note[..note.IndexOfAny(['\'', '"'])], dom);
        Assert.Contains("None of these fits one RTX 4090 24GB", dom);
    }

    [Fact]
    public async Task The_page_says_what_a_kv_cache_dtype_transformers_lacks_is()
    {
        string[] args = ["--task", "infer", "--seq", "1024", "--kv-dtype", "fp8", "--gpu", "l4"];
        using var plan = JsonDocument.Parse(await Cli(args));
        string note = plan.RootElement.GetProperty("kv_dtype_note").GetString()!;
        Assert.StartsWith("--kv-dtype fp8: the KV lines are sized at fp8", note);
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        // The DOM dump escapes only &, < and > in text: compare the note up to its first quote.
        Assert.Contains("note: " + note[..note.IndexOfAny(['\'', '"'])], dom);
    }

    [Fact]
    public async Task The_page_gives_the_fewest_gpus_inference_that_fits_none_needs()
    {
        string[] args = ["--model", "deepseek-ai/DeepSeek-V3", "--task", "infer", "--gpu", "h100"];
        using var plan = JsonDocument.Parse(await Cli(args));
        int gpus = plan.RootElement.GetProperty("inference_gpus_lower_bound").GetProperty("gpus").GetInt32();
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        Assert.Contains($"need at least {gpus} GPUs like the first", dom);
        Assert.Contains("no single change or combination makes the job fit", dom);
    }

    [Fact]
    public async Task The_page_says_what_a_card_holds_when_the_job_fits_only_after_cache_releases()
    {
        // Llama-3.1-8B full bf16 at 1,024 tokens replays above an H100's memory and fits once the allocator frees its cache.
        string[] args = ["--model", "meta-llama/Llama-3.1-8B", "--method", "full", "--precision", "bf16", "--seq", "1024", "--gpu", "h100"];
        using var plan = JsonDocument.Parse(await Cli(args));
        var gpu = plan.RootElement.GetProperty("gpus")[0];
        Assert.True(gpu.GetProperty("fits_after_cache_release").GetBoolean());
        double held = gpu.GetProperty("total_after_release_bytes").GetDouble() / (1L << 30);
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        Assert.Contains($"borderline fit after cache release, holding {held:F2} GiB", dom);
    }

    [Fact]
    public async Task The_page_says_which_gpus_dequantize_lack_a_kernel_or_emulate_bf16()
    {
        // gpt-oss-20b on a V100: the MXFP4 experts load as bf16 there (compute capability 7.0 < 7.5).
        string[] args = ["--model", "openai/gpt-oss-20b", "--task", "infer", "--seq", "1024", "--gpu", "v100-32gb"];
        using var plan = JsonDocument.Parse(await Cli(args));
        double held = plan.RootElement.GetProperty("gpus")[0].GetProperty("dequantized").GetProperty("total_bytes").GetDouble() / (1L << 30);
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        Assert.Contains("out of memory as bf16 (mxfp4 weights need compute capability 7.5", dom);
        Assert.Contains($"total {held:F2} GiB)", dom);
        // flash_attention_2 on a T4 cannot run; the default bf16 on it gets the emulation note.
        string[] flash = ["--model", "meta-llama/Llama-3.2-1B", "--attention", "flash", "--seq", "512", "--gpu", "t4"];
        string flashDom = await Chromium(_server.Address + "/" + Query(flash)[("/api/plan".Length)..]);
        Assert.Contains("cannot run: flash_attention_2", flashDom);
        Assert.Contains("note: no native bf16 below compute capability 8.0", flashDom);
    }

    [Fact]
    public async Task The_page_draws_the_memory_curve_with_the_clis_largest_fits()
    {
        string[] args = ["--model", "Qwen/Qwen3-8B", "--curve", "seq", "--curve-points", "512,1024,2048,4096", "--gpu", "h100", "--gpu", "rtx4090"];
        using var plan = JsonDocument.Parse(await Cli(args));
        long largest = plan.RootElement.GetProperty("curve").GetProperty("largest").GetProperty("h100").GetInt64();
        string dom = await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..]);
        Assert.Contains("data-series=\"total\"", dom);
        Assert.Contains($"H100 SXM 80GB {largest}", dom);
    }

    [Fact]
    public async Task A_screenshot_of_a_plan_is_not_blank()
    {
        string[] args = ["--model", "Qwen/Qwen3-8B", "--method", "lora", "--gpu", "h100", "--gpu", "rtx4090", "--curve", "seq"];
        string png = Path.Combine(Path.GetTempPath(), $"afinado-serve-{Guid.NewGuid():N}.png");
        try
        {
            await Chromium(_server.Address + "/" + Query(args)[("/api/plan".Length)..], "--window-size=1280,1600", $"--screenshot={png}");
            using var bitmap = SkiaSharp.SKBitmap.Decode(png);
            Assert.Equal((1280, 1600), (bitmap.Width, bitmap.Height));
            // A blank or error page has a handful of colours; the ledger bar, the table and the curve have many.
            var colours = new HashSet<uint>();
            for (int y = 0; y < bitmap.Height; y += 4)
                for (int x = 0; x < bitmap.Width; x += 4)
                    colours.Add((uint)bitmap.GetPixel(x, y));
            Assert.True(colours.Count > 50, $"{colours.Count} colours");
        }
        finally { File.Delete(png); }
    }

    /// <summary>Headless Debian chromium (.ci/run installs it) with a throwaway profile; --virtual-time-budget lets the
    /// page's fetches finish before the DOM is dumped (or, with <c>--screenshot=FILE</c>, before the page is drawn).</summary>
    internal static async Task<string> Chromium(string url, params string[] output)
    {
        var profile = Directory.CreateTempSubdirectory("afinado-chromium-").FullName;
        try
        {
            var psi = new ProcessStartInfo("chromium") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", $"--user-data-dir={profile}", "--virtual-time-budget=30000" })
                psi.ArgumentList.Add(a);
            foreach (var a in output.Length > 0 ? output : ["--dump-dom"]) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add(url);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            using (var guard = new CancellationTokenSource(TimeSpan.FromMinutes(15))) // a hang guard, not a deadline
                await p.WaitForExitAsync(guard.Token);
            Assert.True(p.ExitCode == 0, await stderr);
            return await stdout;
        }
        finally { Directory.Delete(profile, true); }
    }
}
