using System.Buffers.Binary;
using System.IO.Compression;
using Afinado.Planner;

namespace Afinado.Evaluation.Data;

/// <summary>
/// Fashion-MNIST as shipped by Debian's <c>dataset-fashion-mnist</c>: gzip-compressed IDX files (big-endian header,
/// raw uint8 pixels). Loads into managed arrays; callers subsample and turn them into tensors.
/// </summary>
public sealed class FashionMnist
{
    public const string DefaultDir = "/usr/share/datasets/fashion-mnist";
    public const int Pixels = 28 * 28;

    public static readonly string[] ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private FashionMnist(byte[] images, byte[] labels, IReadOnlyList<string> files)
    {
        Images = images;
        Labels = labels;
        Files = files;
    }

    /// <summary>Row-major uint8 pixels, <see cref="Pixels"/> per image.</summary>
    public byte[] Images { get; }
    public byte[] Labels { get; }
    /// <summary>The files read, for pinning by hash.</summary>
    public IReadOnlyList<string> Files { get; }
    public int Count => Labels.Length;

    /// <param name="split"><c>train</c> (60,000) or <c>test</c> (10,000).</param>
    public static FashionMnist Load(string split, string dir = DefaultDir)
    {
        var prefix = split switch
        {
            "train" => "train",
            "test" => "t10k",
            _ => throw new InputError("split", $"'{split}' is not a Fashion-MNIST split", "Use 'train' or 'test'."),
        };
        var imagesPath = Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz");
        var labelsPath = Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz");
        foreach (var p in new[] { imagesPath, labelsPath })
            if (!File.Exists(p))
                throw new InputError("fashion-mnist", $"'{p}' is missing", "Install the Debian package: apt-get install dataset-fashion-mnist (or pass the folder holding the IDX files).");
        var (images, idims) = ReadIdx(imagesPath);
        var (labels, ldims) = ReadIdx(labelsPath);
        if (idims.Length != 3 || idims[1] * idims[2] != Pixels || ldims[0] != idims[0])
            throw new InputError(imagesPath, $"has shape {string.Join('×', idims)} with {ldims[0]} labels", "Use the original 28×28 Fashion-MNIST IDX files.");
        return new FashionMnist(images, labels, [imagesPath, labelsPath]);
    }

    /// <summary>IDX: magic 0x00 0x00 0x08(ubyte) ndim, then ndim big-endian int32 dims, then the raw bytes.</summary>
    internal static (byte[] Data, int[] Dims) ReadIdx(string path)
    {
        using var fs = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(fs, CompressionMode.Decompress) : fs;
        Span<byte> head = stackalloc byte[4];
        s.ReadExactly(head);
        if (head[0] != 0 || head[1] != 0 || head[2] != 0x08)
            throw new InputError(path, "is not an unsigned-byte IDX file", "Use the IDX files of dataset-fashion-mnist.");
        var dims = new int[head[3]];
        Span<byte> d = stackalloc byte[4];
        for (int i = 0; i < dims.Length; i++)
        {
            s.ReadExactly(d);
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(d);
        }
        var data = new byte[dims.Aggregate(1L, (a, b) => a * b)];
        s.ReadExactly(data);
        return (data, dims);
    }

    /// <summary>
    /// Indices of up to <paramref name="perClass"/> examples of each listed class, chosen by a seeded shuffle so
    /// different seeds give different (but reproducible) subsamples.
    /// </summary>
    public int[] Subsample(IReadOnlyCollection<int> classes, int perClass, int seed)
    {
        var rng = new Random(seed);
        var order = Enumerable.Range(0, Count).ToArray();
        rng.Shuffle(order);
        var taken = new Dictionary<int, int>();
        var result = new List<int>();
        foreach (var i in order)
        {
            int label = Labels[i];
            if (!classes.Contains(label)) continue;
            var n = taken.GetValueOrDefault(label);
            if (n >= perClass) continue;
            taken[label] = n + 1;
            result.Add(i);
        }
        result.Sort();
        return result.ToArray();
    }

    /// <summary>Pixels of the given images scaled to [0, 1], flattened row-major.</summary>
    public float[] PixelsOf(IReadOnlyList<int> indices)
    {
        var x = new float[indices.Count * Pixels];
        for (int r = 0; r < indices.Count; r++)
        {
            var src = Images.AsSpan(indices[r] * Pixels, Pixels);
            for (int p = 0; p < Pixels; p++) x[r * Pixels + p] = src[p] / 255f;
        }
        return x;
    }

    public long[] LabelsOf(IReadOnlyList<int> indices) => indices.Select(i => (long)Labels[i]).ToArray();
}
