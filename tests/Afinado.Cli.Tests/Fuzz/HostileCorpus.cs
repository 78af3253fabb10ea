using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Afinado.Planner.Catalog;
using Afinado.TestSupport;
using Mono.Unix.Native;

namespace Afinado.Cli.Tests.Fuzz;

/// <summary>
/// The hostile-input corpus of issue 15, generated from fixed seeds so every run checks the same cases: numeric and
/// enum flags at their edges, mutated config.json files, damaged safetensors files and indexes, special files and odd
/// paths for every flag that names a file, training options and data, predictions for calibration. Task files and
/// checkpoint folders have their own generators next to the tests that need a trained run.
/// </summary>
internal static class HostileCorpus
{
    /// <summary>Numbers and strings that break parsers: zero, negatives, overflow of int and long, non-finite, huge, tiny,
    /// malformed, locale-specific, full-width digits, terminal escapes, a 10,000-character string.</summary>
    public static readonly string[] Values =
    [
        "0", "-1", "2147483648", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "NaN", "Infinity",
        "-Infinity", "1e308", "1e-308", "1e999", "abc", "", " ", "1,5", "0x10", "１２", "\u001b[31mred", "2.5", "-0",
        new string('9', 10_000),
    ];

    /// <summary>Small catalog models: the corpus is about input handling, not planning large models.</summary>
    private static readonly string[] SmallModels = ["HuggingFaceTB/SmolLM2-135M", "EleutherAI/pythia-70m", "openai-community/gpt2", "Qwen/Qwen2.5-0.5B"];

    private static readonly string[] PlanNumeric =
    [
        "--batch", "--seq", "--context", "--lora-rank", "--lora-alpha", "--lora-dropout", "--dropout", "--grad-accum", "--guided-es-k",
        "--loss-chunks", "--gpus", "--nodes", "--zero", "--tp", "--gpus-per-node", "--gpu-memory", "--cpu-memory", "--curve-points",
        "--curve-range", "--fsdp-version",
    ];

    private static readonly string[] PlanEnums =
    [
        "--task", "--method", "--precision", "--optimizer", "--rule", "--attention", "--weights-dtype", "--adapter-dtype", "--quant-lib",
        "--kv-dtype", "--kv-cache", "--checkpointing", "--alloc-conf", "--stack", "--gpu", "--device", "--fsdp", "--offload", "--max",
        "--curve", "--lora-targets", "--freeze", "--fsdp-sharded-dtype",
    ];

    private static readonly string[] EnumValues = ["", "garbage", "\u001b[2J", "LoRA", "full,lora", "expandable_segments:", "max_split_size_mb:-5", "**", "{0..99999999}", new string('x', 10_000)];

    /// <summary>Every plan flag at every edge value, then random combinations of two or three (flags interact: --gpus with --tp).</summary>
    public static IEnumerable<HostileCase> PlanFlags(int combinations)
    {
        foreach (var flag in PlanNumeric)
            foreach (var v in Values)
                yield return Plan("plan-flags", $"{flag}={Short(v)}", SmallModels[0], [flag, v]);
        foreach (var flag in PlanEnums)
            foreach (var v in EnumValues)
                yield return Plan("plan-flags", $"{flag}={Short(v)}", SmallModels[1], [flag, v]);
        var rng = new Random(15_001);
        for (int i = 0; i < combinations; i++)
        {
            var args = new List<string>();
            int n = rng.Next(2, 4);
            for (int k = 0; k < n; k++)
            {
                bool numeric = rng.Next(2) == 0;
                string flag = numeric ? PlanNumeric[rng.Next(PlanNumeric.Length)] : PlanEnums[rng.Next(PlanEnums.Length)];
                // Half the values are plausible, so the hostile one meets a plan that otherwise runs.
                string v = rng.Next(2) == 0 ? Plausible(flag, rng) : numeric ? Values[rng.Next(Values.Length)] : EnumValues[rng.Next(EnumValues.Length)];
                args.Add(flag);
                args.Add(v);
            }
            yield return Plan("plan-flags", $"combo {i}", SmallModels[rng.Next(SmallModels.Length)], [.. args]);
        }
    }

    private static string Plausible(string flag, Random rng) => flag switch
    {
        "--gpu-memory" or "--cpu-memory" => rng.Next(1, 200) + "GB",
        "--curve-points" => "128,256,512",
        "--curve-range" => "64:1024",
        "--lora-dropout" or "--dropout" => "0.1",
        "--zero" => rng.Next(0, 4).ToString(),
        "--fsdp-version" => rng.Next(1, 3).ToString(),
        "--task" => rng.Next(2) == 0 ? "train" : "infer",
        "--method" => new[] { "full", "freeze", "lora", "qlora" }[rng.Next(4)],
        "--precision" => new[] { "fp32", "bf16", "amp-bf16" }[rng.Next(3)],
        "--gpu" => new[] { "h100", "t4", "a100-40gb" }[rng.Next(3)],
        "--max" => rng.Next(2) == 0 ? "batch" : "seq",
        "--curve" => rng.Next(2) == 0 ? "batch" : "seq",
        "--fsdp" => "full",
        "--offload" => "optimizer",
        "--checkpointing" => "full",
        "--attention" => "eager",
        _ when PlanNumeric.Contains(flag) => rng.Next(1, 9).ToString(),
        _ => "garbage",
    };

    private static HostileCase Plan(string category, string name, string model, string[] extra) =>
        new(category, name, ["plan", "--model", model, .. extra]);

    /// <summary>Catalog configs with one or two edits: a field at an edge value or of the wrong type, a key removed or
    /// duplicated, a lone surrogate, deep nesting, a byte flipped, the text cut short.</summary>
    public static IEnumerable<HostileCase> PlanConfigs(int count)
    {
        var rng = new Random(15_002);
        var ids = ModelCatalog.Ids;
        JsonNode?[] replacements = [null, true, "", "llama\ud800", "\u001b]0;pwned\u0007", 0, -1, long.MaxValue, 1e308, 0.5, 1e-9,
            100_000_000, new JsonArray(1, 2), new JsonObject { ["a"] = 1 }, 1_000_000_000_000, "4096"];
        for (int i = 0; i < count; i++)
        {
            string id = ids[rng.Next(ids.Count)];
            string text = ModelCatalog.ConfigJson(id);
            string kind;
            switch (rng.Next(7))
            {
                case 0 or 1 or 2:
                    var node = JsonNode.Parse(text)!.AsObject();
                    var keys = node.Select(p => p.Key).ToList();
                    for (int k = rng.Next(1, 3); k > 0; k--)
                        node[keys[rng.Next(keys.Count)]] = replacements[rng.Next(replacements.Length)]?.DeepClone();
                    text = node.ToJsonString(new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                    kind = "field";
                    break;
                case 3:
                    // Text-level edits a serializer would never write.
                    text = rng.Next(4) switch
                    {
                        0 => text.Insert(1, "\"model_type\":\"x\\ud800\","),
                        1 => text.Insert(1, "\"hidden_size\":1,"),
                        2 => new string('[', 5_000) + new string(']', 5_000),
                        _ => text.Replace("\"model_type\"", "\"model_type\":1e999,\"x\"", StringComparison.Ordinal),
                    };
                    kind = "text";
                    break;
                case 4:
                    text = text[..rng.Next(text.Length)];
                    kind = "truncated";
                    break;
                default:
                    var bytes = Encoding.UTF8.GetBytes(text);
                    for (int k = rng.Next(1, 4); k > 0; k--) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                    yield return new HostileCase("plan-config", $"{id} bitflip {i}", ["plan", "--model", "{dir}/config.json", "--gpu", "h100"],
                        new Dictionary<string, byte[]> { ["config.json"] = bytes });
                    continue;
            }
            yield return new HostileCase("plan-config", $"{id} {kind} {i}", ["plan", "--model", "{dir}/config.json", "--gpu", "h100", "--json"],
                new Dictionary<string, byte[]> { ["config.json"] = Encoding.UTF8.GetBytes(text) });
        }
    }

    /// <summary>A small valid safetensors file damaged: bytes flipped in the length field or header, the file cut, the
    /// declared header length at its edges, hostile tensor names (escapes, lone surrogates, duplicates), absurd shapes.</summary>
    public static IEnumerable<HostileCase> Safetensors(int count)
    {
        var rng = new Random(15_003);
        (string, string, long[])[] tensors =
        [
            ("model.embed_tokens.weight", "F32", [256, 16]), ("model.layers.0.self_attn.q_proj.weight", "F32", [16, 16]),
            ("model.norm.weight", "F32", [16]), ("lm_head.weight", "BF16", [256, 16]),
        ];
        byte[] good = SafetensorsWriter.Bytes(tensors);
        for (int i = 0; i < count; i++)
        {
            byte[] file;
            string kind;
            switch (rng.Next(6))
            {
                case 0:
                    file = (byte[])good.Clone();
                    int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
                    for (int k = rng.Next(1, 4); k > 0; k--) file[rng.Next(Math.Min(file.Length, headerEnd + 8))] ^= (byte)(1 << rng.Next(8));
                    kind = "bitflip";
                    break;
                case 1:
                    file = good[..rng.Next(good.Length)];
                    kind = "truncated";
                    break;
                case 2:
                    file = (byte[])good.Clone();
                    ulong[] lengths = [0, 1, 7, (ulong)file.Length, (ulong)file.Length - 7, 100_000_001, ulong.MaxValue, 1UL << 63];
                    BinaryPrimitives.WriteUInt64LittleEndian(file, lengths[rng.Next(lengths.Length)]);
                    kind = "length";
                    break;
                default:
                    string[] names = ["\u001b[31mevil", "a\ud800b", "model.norm.weight", "", new string('n', 5000), "model.layers.999999999.mlp.up_proj.weight", "norm.weight", "../../etc"];
                    var list = tensors.ToList();
                    list[rng.Next(list.Count)] = rng.Next(3) switch
                    {
                        0 => (names[rng.Next(names.Length)], "F32", [16]),
                        1 => ("model.layers.0.mlp.up_proj.weight", new[] { "F32", "Q4", "", "F8_E4M3", "BOOL" }[rng.Next(5)], [rng.Next(0, 3) == 0 ? 0 : 16, 32]),
                        _ => ("model.layers.0.mlp.down_proj.weight", "F32", [long.MaxValue / 2, 4]),
                    };
                    try { file = SafetensorsWriter.Bytes(list); }
                    catch (Exception) { file = good; }
                    kind = "entries";
                    break;
            }
            yield return new HostileCase("inspect", $"{kind} {i}", rng.Next(3) == 0
                    ? ["inspect", "{dir}/model.safetensors", "--tensors"]
                    : ["inspect", "{dir}/model.safetensors", "--json"],
                new Dictionary<string, byte[]> { ["model.safetensors"] = file });
        }
    }

    /// <summary>Sharded checkpoints whose index is damaged: shard names that escape the folder, missing shards, wrong types.</summary>
    public static IEnumerable<HostileCase> Indexes(int count)
    {
        var rng = new Random(15_004);
        byte[] shard = SafetensorsWriter.Bytes([("model.norm.weight", "F32", [16])]);
        string[] shardNames = ["model-00001.safetensors", "../model-00001.safetensors", "/etc/passwd", "", "a\u001b[2Jb.safetensors", "missing.safetensors", "."];
        string[] bodies =
        [
            """{"weight_map":{"model.norm.weight":"SHARD"}}""", """{"weight_map":{"model.norm.weight":"SHARD","model.norm.weight":"SHARD"}}""",
            """{"weight_map":{"model.norm.weight":1}}""", """{"weight_map":[]}""", """[]""", """{"weight_map":{"a\ud800":"SHARD"}}""",
            """{"metadata":{"total_size":1e999},"weight_map":{"model.norm.weight":"SHARD"}}""", """{"weight_map":{"model.norm.weight":"SHARD"}""",
        ];
        for (int i = 0; i < count; i++)
        {
            string body = bodies[rng.Next(bodies.Length)].Replace("SHARD", shardNames[rng.Next(shardNames.Length)], StringComparison.Ordinal);
            yield return new HostileCase("inspect-index", $"index {i}", ["inspect", "{dir}"], new Dictionary<string, byte[]>
            {
                ["model.safetensors.index.json"] = Encoding.UTF8.GetBytes(body),
                ["model-00001.safetensors"] = shard,
            });
        }
    }

    /// <summary>Special files and odd paths for every flag that names a file: devices, a FIFO, links to them, link loops,
    /// dangling links, folders, missing files, names with terminal escapes.</summary>
    public static IEnumerable<HostileCase> SpecialPaths()
    {
        (string Kind, Action<string, string> Make)[] specials =
        [
            ("dev-zero", (dir, p) => File.CreateSymbolicLink(p, "/dev/zero")),
            ("dev-urandom", (dir, p) => File.CreateSymbolicLink(p, "/dev/urandom")),
            ("fifo", (dir, p) => Check(Syscall.mkfifo(p, FilePermissions.DEFFILEMODE))),
            ("link-loop", (dir, p) => { File.CreateSymbolicLink(p, p + ".b"); File.CreateSymbolicLink(p + ".b", p); }),
            ("dangling", (dir, p) => File.CreateSymbolicLink(p, Path.Combine(dir, "nowhere"))),
            ("folder", (dir, p) => Directory.CreateDirectory(p)),
            ("missing", (dir, p) => { }),
            ("empty", (dir, p) => File.WriteAllBytes(p, [])),
        ];
        (string Name, Func<string, string[]> Args)[] users =
        [
            ("plan --model", p => ["plan", "--model", p]),
            ("inspect", p => ["inspect", p]),
            ("inspect --config", p => ["inspect", "{dir}/ok.safetensors", "--config", p]),
            ("train --data", p => ["train", "--model", "{dir}/tiny.json", "--data", p, "--tokenizer", "byte", "--seq", "8", "--max-steps", "1", "--threads", "1", "--out", "{dir}/run"]),
            ("train --model", p => ["train", "--model", p, "--data", "{dir}/text.txt", "--tokenizer", "byte", "--seq", "8", "--max-steps", "1", "--threads", "1", "--out", "{dir}/run"]),
            ("train --resume", p => ["train", "--resume", p, "--threads", "1"]),
            ("eval --tasks", p => ["eval", "--out", "{dir}/eval", "--tasks", p]),
            ("eval --run", p => ["eval", "--out", "{dir}/eval", "--run", p]),
            ("calibration", p => ["calibration", p]),
            ("export --model", p => ["export", "deepspeed", "--model", p, "--gpus", "2", "--zero", "2"]),
        ];
        var fixtures = new Dictionary<string, byte[]>
        {
            ["ok.safetensors"] = SafetensorsWriter.Bytes([("model.norm.weight", "F32", [16])]),
            ["tiny.json"] = Encoding.UTF8.GetBytes(TinyConfig),
            ["text.txt"] = Encoding.UTF8.GetBytes(TinyText),
        };
        foreach (var (use, args) in users)
            foreach (var (kind, make) in specials)
                foreach (var name in new[] { "input", "in\u001b[31mput" })
                {
                    if (name != "input" && kind != "missing") continue;
                    yield return new HostileCase("special-paths", $"{use} {kind}{(name == "input" ? "" : " escaped name")}", args("{dir}/" + name), fixtures,
                        dir => make(dir, Path.Combine(dir, name)));
                }
    }

    private static void Check(int rc)
    {
        if (rc != 0) throw new IOException($"mkfifo failed: {Stdlib.GetLastError()}");
    }

    public const string TinyConfig = """
        {"model_type":"llama","vocab_size":256,"hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
         "intermediate_size":32,"max_position_embeddings":64}
        """;

    /// <summary>Forty short paragraphs (documents are separated by blank lines), enough for train and validation windows.</summary>
    public static readonly string TinyText = string.Join("\n\n", Enumerable.Range(0, 40).Select(i => $"frase numero {i} del texto de prueba, con algo de variedad {i * 7 % 13}."));

    private static readonly string[] TrainNumeric =
    [
        "--seq", "--batch", "--grad-accum", "--max-steps", "--lr", "--min-lr", "--warmup", "--weight-decay", "--momentum", "--clip-norm",
        "--lora-rank", "--lora-alpha", "--lora-dropout", "--es-pairs", "--es-sigma", "--es-rank", "--eval-every", "--eval-batches",
        "--checkpoint-every", "--threads", "--seed",
    ];

    private static readonly string[] TrainValues = ["0", "-1", "-5", "9223372036854775808", "NaN", "Infinity", "-Infinity", "1e30", "1e-308", "abc", "", "5"];

    /// <summary>Every numeric training option at its edges, on a one-step run of a tiny model (a value that is valid trains it).</summary>
    public static IEnumerable<HostileCase> TrainOptions()
    {
        var files = new Dictionary<string, byte[]> { ["tiny.json"] = Encoding.UTF8.GetBytes(TinyConfig), ["text.txt"] = Encoding.UTF8.GetBytes(TinyText) };
        foreach (var flag in TrainNumeric)
            foreach (var v in TrainValues)
            {
                string rule = flag.StartsWith("--es-", StringComparison.Ordinal) ? "es" : "backprop";
                string method = flag.StartsWith("--lora-", StringComparison.Ordinal) ? "lora" : "full";
                string optimizer = flag == "--momentum" ? "momentum" : "adamw";
                var baseArgs = new Dictionary<string, string>
                {
                    ["--model"] = "{dir}/tiny.json", ["--data"] = "{dir}/text.txt", ["--tokenizer"] = "byte", ["--seq"] = "8", ["--batch"] = "2",
                    ["--max-steps"] = "2", ["--eval-every"] = "1", ["--eval-batches"] = "1", ["--checkpoint-every"] = "1", ["--threads"] = "1",
                    ["--rule"] = rule, ["--method"] = method, ["--optimizer"] = optimizer, ["--out"] = "{dir}/run",
                };
                baseArgs[flag] = v;
                yield return new HostileCase("train-options", $"{flag}={Short(v)}", ["train", .. baseArgs.SelectMany(kv => new[] { kv.Key, kv.Value })], files);
            }
    }

    /// <summary>Training data files: JSONL records of the wrong shape or type, broken encodings, odd line structure.</summary>
    public static IEnumerable<HostileCase> TrainData(int count)
    {
        var rng = new Random(15_005);
        string[] jsonl =
        [
            """{"prompt": 1, "completion": "x"}""", """{"prompt": null, "completion": "x"}""", """{"prompt": "a\ud800", "completion": "x"}""",
            """{"prompt": "a", "prompt": "b", "completion": "x"}""", """{"text": ["a"]}""", """{"text": {"a": 1}}""", """[]""", """null""",
            """{"text": "ok"}""", """{"prompt": "q", "completion": "a"}""", """{"text": "x""", """{"text": 1e999}""", "{}", "\"just a string\"",
            """{"messages": [{"role": "user", "content": 5}]}""", """{"text": "\u001b[2Jclear"}""",
        ];
        byte[][] raw = [[0xFF, 0xFE, 0x41], [0xC3, 0x28], [0xEF, 0xBB, 0xBF, 0x7B, 0x7D], [0x00, 0x00], "\r\r\r"u8.ToArray()];
        var baseFiles = new Dictionary<string, byte[]> { ["tiny.json"] = Encoding.UTF8.GetBytes(TinyConfig) };
        for (int i = 0; i < count; i++)
        {
            bool asJsonl = rng.Next(3) != 0;
            var sb = new MemoryStream();
            int lines = rng.Next(1, 60);
            for (int l = 0; l < lines; l++)
            {
                byte[] line = rng.Next(8) == 0 ? raw[rng.Next(raw.Length)]
                    : asJsonl ? Encoding.UTF8.GetBytes(rng.Next(3) == 0 ? jsonl[rng.Next(jsonl.Length)] : $$"""{"text": "linea {{l}} de datos de prueba"}""")
                    : Encoding.UTF8.GetBytes($"parrafo {l} con palabras\n");
                sb.Write(line);
                sb.WriteByte((byte)'\n');
            }
            string file = asJsonl ? "data.jsonl" : "data.txt";
            var files = new Dictionary<string, byte[]>(baseFiles) { [file] = sb.ToArray() };
            yield return new HostileCase("train-data", $"{file} {i}",
                ["train", "--model", "{dir}/tiny.json", "--data", "{dir}/" + file, "--tokenizer", "byte", "--seq", "8", "--batch", "2", "--max-steps", "1",
                    "--eval-every", "1", "--eval-batches", "1", "--threads", "1", "--out", "{dir}/run"], files);
        }
    }

    /// <summary>Prediction files for <c>afinado calibration</c>: CSV and JSONL rows with values out of range, of the wrong
    /// type, non-finite, ragged, with hostile strings.</summary>
    public static IEnumerable<HostileCase> Predictions(int count)
    {
        var rng = new Random(15_006);
        string[] confidences = ["0.5", "1", "0", "-0.1", "1.5", "NaN", "Infinity", "1e999", "abc", "", "0x1", "\u001b[31m", "0.9999999999999999999"];
        string[] corrects = ["1", "0", "true", "false", "2", "-1", "yes", "", "NaN", "null"];
        for (int i = 0; i < count; i++)
        {
            bool json = rng.Next(2) == 0;
            var sb = new StringBuilder();
            if (!json && rng.Next(2) == 0) sb.Append(rng.Next(3) == 0 ? "confidence,correct,label,probabilities\n" : "confidence,correct\n");
            int rows = rng.Next(1, 40);
            for (int r = 0; r < rows; r++)
            {
                bool hostile = rng.Next(6) == 0;
                string c = hostile ? confidences[rng.Next(confidences.Length)] : (rng.NextDouble()).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
                string k = hostile ? corrects[rng.Next(corrects.Length)] : rng.Next(2).ToString();
                if (json)
                    sb.Append(rng.Next(10) == 0 ? "{\"confidence\": \"x\\ud800\", \"correct\": 1}" : $"{{\"confidence\": {(c.Length == 0 ? "null" : c)}, \"correct\": {(k.Length == 0 ? "null" : k)}}}");
                else
                    sb.Append(c).Append(',').Append(k).Append(rng.Next(12) == 0 ? ",3,\"[0.1;0.2;NaN]\"" : "");
                sb.Append('\n');
            }
            string name = json ? "p.jsonl" : "p.csv";
            yield return new HostileCase("calibration", $"{name} {i}", ["calibration", "{dir}/" + name, .. rng.Next(3) == 0 ? new[] { "--bins", Values[rng.Next(Values.Length)] } : []],
                new Dictionary<string, byte[]> { [name] = Encoding.UTF8.GetBytes(sb.ToString()) });
        }
    }

    /// <summary>Copies of a good run folder (<paramref name="goodRun"/>, two checkpoints) damaged one way each — a byte
    /// flipped or the file cut short in any file, a file or folder deleted, the <c>latest</c> pointer rewritten, a file
    /// replaced by a link to a device or by a FIFO — then resumed for one more step.</summary>
    public static IEnumerable<HostileCase> Checkpoints(string goodRun, int count)
    {
        var rng = new Random(15_008);
        string[] pointers = ["", "step-99999999", "../../etc", "/etc/passwd", "step-00000002\n\n", "\u001b[2J", "step-0000000a", "step-00000001", new string('s', 5000)];
        var relative = Directory.GetFiles(goodRun, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(goodRun, f)).Order(StringComparer.Ordinal).ToArray();
        for (int i = 0; i < count; i++)
        {
            int kind = rng.Next(6);
            string target = relative[rng.Next(relative.Length)];
            int seed = rng.Next();
            string pointer = pointers[rng.Next(pointers.Length)].Replace("\\n", "\n", StringComparison.Ordinal).Replace("\\u001b", "\u001b", StringComparison.Ordinal);
            string what = kind switch { 0 => "bitflip", 1 => "truncate", 2 => "delete", 3 => "latest", 4 => "device link", _ => "fifo" };
            yield return new HostileCase("checkpoints", $"{what} {(kind == 3 ? Short(pointer) : target)} {i}",
                ["train", "--resume", "{dir}/run", "--max-steps", "4", "--threads", "1"], null, dir =>
                {
                    string run = Path.Combine(dir, "run");
                    CopyFolder(goodRun, run);
                    var r = new Random(seed);
                    string file = Path.Combine(run, target);
                    switch (kind)
                    {
                        case 0:
                            var bytes = File.ReadAllBytes(file);
                            if (bytes.Length > 0) bytes[r.Next(bytes.Length)] ^= (byte)(1 << r.Next(8));
                            File.WriteAllBytes(file, bytes);
                            break;
                        case 1:
                            using (var f = File.OpenWrite(file)) f.SetLength(r.Next((int)Math.Max(1, f.Length)));
                            break;
                        case 2:
                            if (r.Next(3) == 0) Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
                            else File.Delete(file);
                            break;
                        case 3:
                            File.WriteAllText(Path.Combine(run, "checkpoints", "latest"), pointer);
                            break;
                        case 4:
                            File.Delete(file);
                            File.CreateSymbolicLink(file, r.Next(2) == 0 ? "/dev/zero" : "/dev/urandom");
                            break;
                        default:
                            File.Delete(file);
                            Check(Syscall.mkfifo(file, FilePermissions.DEFFILEMODE));
                            break;
                    }
                });
        }
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, d)));
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(f, Path.Combine(to, Path.GetRelativePath(from, f)));
    }

    private static string Short(string v) => v.Length <= 24 ? TerminalText.Escape(v) : $"{v[..8]}…({v.Length} chars)";
}
