using System.Text;
using Afinado.Planner.Catalog;
using Afinado.Planner.Safetensors;
using Afinado.TestSupport;

namespace Afinado.Planner.Tests;

public sealed class SafetensorsHeaderTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("afinado-st-");

    public void Dispose() => _dir.Delete(true);

    private string PathOf(string name) => Path.Combine(_dir.FullName, name);

    private static readonly (string, string, long[])[] Small =
    [
        ("a.weight", "F32", [4, 3]),
        ("a.bias", "BF16", [4]),
        ("b", "I8", [5]),
        ("empty", "F16", [0, 7]),
    ];

    [Fact]
    public void Reads_dtypes_shapes_offsets_and_metadata_of_a_real_format_file()
    {
        var path = PathOf("small.safetensors");
        SafetensorsWriter.Write(path, Small, new Dictionary<string, string> { ["format"] = "pt" });
        var f = SafetensorsHeader.Read(path);
        Assert.Equal(["a.weight", "a.bias", "b", "empty"], f.Tensors.Select(t => t.Name));
        Assert.Equal([4L, 3], f.Tensors[0].Shape);
        Assert.Equal((0L, 48L), (f.Tensors[0].Begin, f.Tensors[0].End));
        Assert.Equal(8, f.Tensors[1].Bytes);
        Assert.Equal(0, f.Tensors[3].Elements);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(48 + 8 + 5, f.DataBytes);
        Assert.Equal(0, f.HeaderBytes % 8);
    }

    private InputError ReadRaw(ulong declared, string header, long data)
    {
        var path = PathOf("bad.safetensors");
        SafetensorsWriter.WriteRaw(path, declared, Encoding.UTF8.GetBytes(header), data);
        return Assert.Throws<InputError>(() => SafetensorsHeader.Read(path));
    }

    private InputError ReadHeader(string header, long data) => ReadRaw((ulong)Encoding.UTF8.GetByteCount(header), header, data);

    [Fact]
    public void Header_length_beyond_the_file_is_bad_input()
    {
        var e = ReadRaw(1000, "{}", 0);
        Assert.Contains("declares a 1,000-byte header", e.Message);
    }

    [Fact]
    public void Header_over_100_MB_is_refused_before_allocating()
    {
        var e = ReadRaw(100_000_001, "{}", 0);
        Assert.Contains("over the 100,000,000-byte limit", e.Message);
        Assert.Contains("limit", ReadRaw(ulong.MaxValue, "{}", 0).Message);
    }

    [Fact]
    public void File_shorter_than_the_length_field_is_bad_input()
    {
        var path = PathOf("tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("shorter than the 8-byte", Assert.Throws<InputError>(() => SafetensorsHeader.Read(path)).Message);
    }

    [Theory]
    [InlineData("[1, 2]", "does not start with '{'")]
    [InlineData("{\"a\": 1", "not valid JSON")]
    [InlineData("{\"a\": 5}", "is not an object")]
    [InlineData("{\"a\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", "unknown dtype \"F33\"")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", "not a non-negative integer")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", "not a non-negative integer")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", "data_offsets has 1 entries")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", "= 8 bytes but data_offsets span 4 bytes")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", "run backwards")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", "beyond the 4-byte data section")]
    [InlineData("{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 4]}}", "too large to exist")]
    [InlineData("{\"a\": {\"dtype\": \"F4\", \"shape\": [3], \"data_offsets\": [0, 2]}}", "do not fill whole bytes")]
    [InlineData("{\"__metadata__\": {\"x\": 1}}", "must be a string")]
    [InlineData("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", "no dtype")]
    public void Malformed_headers_are_named_input_errors(string header, string expected)
    {
        Assert.Contains(expected, ReadHeader(header, 4).Message);
    }

    [Fact]
    public void Invalid_utf8_is_bad_input()
    {
        var path = PathOf("utf8.safetensors");
        SafetensorsWriter.WriteRaw(path, 4, [(byte)'{', 0xC3, 0x28, (byte)'}'], 0);
        Assert.Throws<InputError>(() => SafetensorsHeader.Read(path));
    }

    [Fact]
    public void Overlapping_offsets_are_bad_input()
    {
        var e = ReadHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12);
        Assert.Contains("overlaps \"a\"", e.Message);
    }

    [Fact]
    public void Gaps_and_trailing_bytes_are_bad_input_as_in_the_reference_loader()
    {
        Assert.Contains("unused", ReadHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8).Message);
        Assert.Contains("cover 4", ReadHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8).Message);
    }

    [Fact]
    public void Duplicate_names_are_bad_input()
    {
        var e = ReadHeader("{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, \"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}", 2);
        Assert.Contains("appears twice", e.Message);
    }

    [Fact]
    public void Sharded_index_is_read_and_checked_against_its_shards()
    {
        SafetensorsWriter.Write(PathOf("model-00001-of-00002.safetensors"), [("x", "F16", [2, 2])]);
        SafetensorsWriter.Write(PathOf("model-00002-of-00002.safetensors"), [("y", "F16", [3])]);
        File.WriteAllText(PathOf(SafetensorsCheckpoint.IndexFileName),
            "{\"metadata\": {\"total_size\": 14}, \"weight_map\": {\"x\": \"model-00001-of-00002.safetensors\", \"y\": \"model-00002-of-00002.safetensors\"}}");
        var c = SafetensorsCheckpoint.Open(_dir.FullName);
        Assert.Equal(2, c.Files.Count);
        Assert.Equal(14, c.TotalBytes);
        Assert.Equal(7, c.TotalElements);
        Assert.Equal(2, SafetensorsCheckpoint.Open(PathOf(SafetensorsCheckpoint.IndexFileName)).Files.Count);

        File.WriteAllText(PathOf(SafetensorsCheckpoint.IndexFileName),
            "{\"weight_map\": {\"x\": \"model-00002-of-00002.safetensors\", \"y\": \"model-00002-of-00002.safetensors\"}}");
        Assert.Contains("that shard has no such tensor", Assert.Throws<InputError>(() => SafetensorsCheckpoint.Open(_dir.FullName)).Message);

        File.WriteAllText(PathOf(SafetensorsCheckpoint.IndexFileName), "{\"weight_map\": {\"x\": \"../../etc/passwd\"}}");
        Assert.Contains("not a file in the index's folder", Assert.Throws<InputError>(() => SafetensorsCheckpoint.Open(_dir.FullName)).Message);
    }

    [Fact]
    public void A_name_in_two_shards_is_bad_input()
    {
        SafetensorsWriter.Write(PathOf("a.safetensors"), [("x", "F16", [2])]);
        SafetensorsWriter.Write(PathOf("b.safetensors"), [("x", "F16", [2])]);
        Assert.Contains("repeats tensor \"x\"", Assert.Throws<InputError>(() => SafetensorsCheckpoint.Open(_dir.FullName)).Message);
    }

    [Fact]
    public void A_full_size_pythia_checkpoint_matches_its_catalog_architecture()
    {
        var arch = ModelCatalog.Get("EleutherAI/pythia-70m");
        SafetensorsWriter.Write(PathOf("model.safetensors"), arch.Tensors.Select(t => (t.Name, "F16", t.Shape)));
        var c = SafetensorsCheckpoint.Open(_dir.FullName);
        Assert.Equal(arch.ParameterCount, c.TotalElements);
        Assert.Equal(2 * arch.ParameterCount, c.TotalBytes);
        var cmp = CheckpointComparison.Compare(arch, c.Tensors);
        Assert.True(cmp.Matches);
        Assert.Equal(arch.Tensors.Count, cmp.Matched);
    }

    [Fact]
    public void Base_model_export_with_buffers_and_tied_head_copy_still_matches()
    {
        // Like the hub's gpt2 model.safetensors: saved from GPT2Model (no "transformer." prefix), with attn.bias masks.
        var arch = ModelCatalog.Get("openai-community/gpt2");
        var tensors = arch.Tensors.Select(t => (t.Name["transformer.".Length..], "F32", t.Shape)).ToList();
        tensors.Add(("h.0.attn.bias", "F32", [1, 1, 1024, 1024]));
        tensors.Add(("lm_head.weight", "F32", [50257, 768]));
        SafetensorsWriter.Write(PathOf("model.safetensors"), tensors);
        var cmp = CheckpointComparison.Compare(arch, SafetensorsCheckpoint.Open(_dir.FullName).Tensors);
        Assert.True(cmp.Matches);
        Assert.Equal("transformer.", cmp.StrippedPrefix);
        Assert.Equal(["h.0.attn.bias"], cmp.IgnoredBuffers);
        Assert.Equal(["lm_head.weight"], cmp.TiedCopies);
    }

    [Fact]
    public void Mismatches_are_reported_by_kind()
    {
        var arch = ModelCatalog.Get("Qwen/Qwen2.5-0.5B");
        var tensors = arch.Tensors
            .Where(t => t.Name != "model.layers.3.self_attn.k_proj.bias")
            .Select(t => (t.Name, "BF16", t.Name == "model.norm.weight" ? new long[] { 895 } : t.Shape))
            .Append(("model.layers.99.mlp.up_proj.weight", "BF16", new long[] { 2, 2 }))
            .ToList();
        var cmp = CheckpointComparison.Compare(arch, tensors.Select(t => new SafetensorsTensor(t.Item1, t.Item2, t.Item3, 0, 0, "x")));
        Assert.False(cmp.Matches);
        Assert.Equal(["model.layers.3.self_attn.k_proj.bias"], cmp.Missing);
        Assert.Equal(["model.layers.99.mlp.up_proj.weight"], cmp.Unexpected);
        var w = Assert.Single(cmp.WrongShape);
        Assert.Equal(("model.norm.weight", 896L, 895L), (w.Name, w.Expected[0], w.Actual[0]));
    }
}
