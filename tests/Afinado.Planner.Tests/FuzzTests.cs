using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Afinado.Planner.Architecture;
using Afinado.Planner.Catalog;
using Afinado.Planner.Safetensors;
using Afinado.TestSupport;
using Xunit.Abstractions;

namespace Afinado.Planner.Tests;

/// <summary>
/// Seeded mutation fuzzing of config.json and safetensors headers. Every input must either parse to something
/// self-consistent or raise <see cref="InputError"/>; any other exception, a non-positive or overflowed count fails.
/// </summary>
public class FuzzTests(ITestOutputHelper log)
{
    private const int ConfigCases = 4000;
    private const int HeaderCases = 6000;

    private static readonly JsonNode?[] Replacements =
    [
        null, true, false, "", "4096", "llama", 0, -1, -4096, 0.5, 1.5, 1e-9, 1e13, 1e30, 1e308, int.MaxValue, (long)int.MaxValue + 1,
        long.MaxValue, 3, 7, 100_000_000, 100_000_001, new JsonArray(1, 2), new JsonObject { ["a"] = 1 },
    ];

    private static readonly double[] Scales = [0, -1, 0.5, 1.5, 2, 3, 10, 1000, 1e6, 1e12];

    [Fact]
    public void Mutated_configs_parse_consistently_or_raise_InputError()
    {
        var rng = new Random(20260526);
        var ids = ModelCatalog.Ids;
        var sources = ids.Select(ModelCatalog.ConfigJson).ToArray();
        int parsed = 0, rejected = 0;
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < ConfigCases; i++)
        {
            int pick = rng.Next(sources.Length);
            string text = Mutate(sources[pick], rng);
            try
            {
                var arch = HfConfigReader.Parse(text, "fuzz.json");
                AssertConsistent(arch, text);
                parsed++;
            }
            catch (InputError e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Field));
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i} ({ids[pick]}) threw {e.GetType().Name}: {e.Message}\n{text}");
            }
        }
        log.WriteLine($"{ConfigCases} mutated configs: {parsed} parsed, {rejected} rejected, {watch.ElapsedMilliseconds} ms");
        Assert.True(parsed > ConfigCases / 10 && rejected > ConfigCases / 10, $"mutations too weak or too strong: {parsed} parsed, {rejected} rejected");
    }

    private static string Mutate(string json, Random rng)
    {
        if (rng.Next(8) == 0) return MutateText(json, rng);
        var node = JsonNode.Parse(json)!.AsObject();
        int edits = 1 + rng.Next(3);
        for (int e = 0; e < edits; e++)
        {
            var keys = node.Select(p => p.Key).ToList();
            if (keys.Count == 0) break;
            string key = keys[rng.Next(keys.Count)];
            switch (rng.Next(5))
            {
                case 0: node.Remove(key); break;
                case 1: node[key] = Replacements[rng.Next(Replacements.Length)]?.DeepClone(); break;
                case 2:
                    if (node[key] is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d * 1e12)) node[key] = d * Scales[rng.Next(Scales.Length)];
                    else if (node[key] is JsonValue b && b.TryGetValue<bool>(out var flag)) node[key] = !flag;
                    break;
                case 3: node["model_type"] = ArchitectureFamilies.Supported.ElementAt(rng.Next(ArchitectureFamilies.Supported.Count)); break;
                default: node[key] = node[keys[rng.Next(keys.Count)]]?.DeepClone(); break;
            }
        }
        return node.ToJsonString();
    }

    private const string Punctuation = "{}[]\":,0-9e.x\\";

    private static string MutateText(string json, Random rng)
    {
        var chars = json.ToCharArray();
        return rng.Next(3) switch
        {
            0 => json[..rng.Next(json.Length)],
            1 => new string(chars.Select(c => rng.Next(40) == 0 ? Punctuation[rng.Next(Punctuation.Length)] : c).ToArray()),
            _ => json.Insert(rng.Next(json.Length), new string('[', rng.Next(1, 200))),
        };
    }

    private static void AssertConsistent(ModelArchitecture arch, string text)
    {
        BigInteger exact = arch.Tensors.Aggregate(BigInteger.Zero, (s, t) => s + t.Shape.Aggregate(BigInteger.One, (p, d) => p * d));
        Assert.True(exact > 0 && exact <= ArchitectureLimits.MaxParameters, $"count {exact} for\n{text}");
        Assert.Equal(exact, new BigInteger(arch.ParameterCount));
        Assert.InRange(arch.ActiveParameterCount, 1, arch.ParameterCount);
        Assert.True(arch.KvBytesPerToken(2) > 0);
        foreach (var t in arch.Tensors)
            foreach (var d in t.Shape)
                if (d <= 0) Assert.Fail($"{t.Name} has dimension {d}\n{text}");
        foreach (var l in arch.Linears)
            if (l.InFeatures <= 0 || l.OutFeatures <= 0) Assert.Fail($"{l.Module} has no width\n{text}");
    }

    [Fact]
    public void Mutated_safetensors_headers_parse_consistently_or_raise_InputError()
    {
        var rng = new Random(7);
        var arch = ModelCatalog.Get("EleutherAI/pythia-70m");
        // A real-format header (first layers of Pythia, mixed dtypes) with a small data section we can hold in memory.
        var tensors = arch.Tensors.Take(12).Select((t, i) => (t.Name, i % 3 == 0 ? "BF16" : i % 3 == 1 ? "F32" : "I8", t.Shape.Select(d => Math.Min(d, 8L)).ToArray())).ToList();
        var seed = SafetensorsWriter.Bytes(tensors, new Dictionary<string, string> { ["format"] = "pt" });
        int parsed = 0, rejected = 0;
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < HeaderCases; i++)
        {
            var bytes = MutateFile(seed, rng);
            try
            {
                var file = SafetensorsHeader.Read(new MemoryStream(bytes), "fuzz.safetensors");
                Assert.Equal(file.DataBytes, file.Tensors.Sum(t => t.Bytes));
                Assert.All(file.Tensors, t => Assert.Equal((BigInteger)t.Elements * SafetensorsDtype.BitsOf(t.Dtype)!.Value, (BigInteger)t.Bytes * 8));
                parsed++;
            }
            catch (InputError)
            {
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i} threw {e.GetType().Name}: {e.Message}\n{Encoding.UTF8.GetString(bytes, 8, Math.Min(bytes.Length - 8, 400))}");
            }
        }
        log.WriteLine($"{HeaderCases} mutated headers: {parsed} parsed, {rejected} rejected, {watch.ElapsedMilliseconds} ms");
        Assert.True(parsed > 0 && rejected > HeaderCases / 2, $"{parsed} parsed, {rejected} rejected");
    }

    private static byte[] MutateFile(byte[] seed, Random rng)
    {
        var bytes = (byte[])seed.Clone();
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        switch (rng.Next(7))
        {
            case 0: // flip a few header bytes
                for (int k = rng.Next(1, 6); k > 0; k--) bytes[8 + rng.Next(headerLength)] ^= (byte)(1 << rng.Next(8));
                return bytes;
            case 1: // replace a header byte with JSON punctuation or a digit
                bytes[8 + rng.Next(headerLength)] = (byte)"{}[]\":,-0123456789e. "[rng.Next(21)];
                return bytes;
            case 2: // truncate anywhere
                return bytes[..rng.Next(bytes.Length)];
            case 3: // edit the length field
                ulong declared = rng.Next(4) switch
                {
                    0 => (ulong)rng.NextInt64(),
                    1 => (ulong)(headerLength + rng.Next(-16, 17)),
                    2 => ulong.MaxValue - (ulong)rng.Next(100),
                    _ => (ulong)rng.Next(0, 100_000_200),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, declared);
                return bytes;
            case 4: // grow or shrink the data section
                int delta = rng.Next(-8, 9);
                var resized = new byte[Math.Max(8, bytes.Length + delta)];
                Array.Copy(bytes, resized, Math.Min(bytes.Length, resized.Length));
                return resized;
            case 5: // change a number inside the header text
                var text = Encoding.UTF8.GetString(bytes, 8, headerLength);
                int at = text.IndexOfAny("0123456789".ToCharArray(), rng.Next(text.Length));
                if (at < 0) return bytes;
                var edited = text[..at] + rng.Next(0, 2) switch { 0 => rng.Next(0, 1000).ToString(), _ => "-1" } + text[(at + 1)..];
                return Rebuild(edited, bytes.Length - 8 - headerLength);
            default: // rename a tensor to collide with another (duplicate key)
                var t = Encoding.UTF8.GetString(bytes, 8, headerLength);
                using (var doc = JsonDocument.Parse(t))
                {
                    var names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
                    var a = names[rng.Next(names.Count)];
                    var b = names[rng.Next(names.Count)];
                    return Rebuild(t.Replace($"\"{a}\"", $"\"{b}\""), bytes.Length - 8 - headerLength);
                }
        }
    }

    private static byte[] Rebuild(string header, long dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        return bytes;
    }

    [Fact]
    public void Mutated_index_files_parse_or_raise_InputError()
    {
        var rng = new Random(11);
        const string seed = "{\"metadata\": {\"total_size\": 14}, \"weight_map\": {\"x\": \"model-00001-of-00002.safetensors\", \"y\": \"model-00002-of-00002.safetensors\"}}";
        for (int i = 0; i < 2000; i++)
        {
            var text = MutateText(seed, rng);
            try { SafetensorsCheckpoint.ReadWeightMap(Encoding.UTF8.GetBytes(text), "fuzz.index.json"); }
            catch (InputError) { }
            catch (Exception e) { Assert.Fail($"case {i} threw {e.GetType().Name}: {e.Message}\n{text}"); }
        }
    }
}
