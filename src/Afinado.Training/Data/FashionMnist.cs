using System.Buffers.Binary;
using System.IO.Compression;
using Afinado.Planner;
using static TorchSharp.torch;

namespace Afinado.Training.Data;

/// <summary>
/// Fashion-MNIST from Debian's <c>dataset-fashion-mnist</c> (gzip IDX files in /usr/share/datasets/fashion-mnist): the one
/// reader of the project. <see cref="ReadSplit"/> gives the raw uint8 pixels and labels (the class-split recipe
/// and its evaluation subsample them); <see cref="Load"/> gives float32 [N, 1, 28, 28] in [0, 1] and int64 [N] labels.
/// </summary>
public static class FashionMnist
{
    public const string DefaultDir = "/usr/share/datasets/fashion-mnist";
    public const int Pixels = 28 * 28;

    /// <summary>One split as stored: row-major pixels (<see cref="Pixels"/> per image), labels, and the two files read.</summary>
    public sealed record Split(byte[] Images, byte[] Labels, IReadOnlyList<string> Files)
    {
        public int Count => Labels.Length;

        /// <summary>
        /// Indices of up to <paramref name="perClass"/> examples of each listed class, chosen by a seeded shuffle so
        /// different seeds give different (but reproducible) subsamples; in ascending order.
        /// </summary>
        public int[] Subsample(IReadOnlyCollection<int> classes, int perClass, int seed)
        {
            var order = Enumerable.Range(0, Count).ToArray();
            new Random(seed).Shuffle(order);
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

    /// <param name="field">What the error names when the files are missing or malformed (the caller's flag).</param>
    public static Split ReadSplit(bool train, string dir = DefaultDir, InputText? field = null)
    {
        field ??= "fashion-mnist";
        var prefix = train ? "train" : "t10k";
        var imagesPath = Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz");
        var labelsPath = Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz");
        if (!File.Exists(imagesPath) || !File.Exists(labelsPath))
            throw new InputError(field, $"{imagesPath} is missing: the Debian package dataset-fashion-mnist is not installed",
                "Install it: sudo apt-get install -y dataset-fashion-mnist (or pass the folder that holds the IDX .gz files).");
        var (images, idim) = ReadIdx(imagesPath, field);
        var (labels, ldim) = ReadIdx(labelsPath, field);
        if (idim.Length != 3 || idim[1] * idim[2] != Pixels || ldim.Length != 1 || ldim[0] != idim[0])
            throw new InputError(field, $"{imagesPath} ({string.Join('×', idim)}) and {labelsPath} ({string.Join('×', ldim)}) are not a 28×28 image/label pair",
                "Use the unmodified files of dataset-fashion-mnist.");
        return new Split(images, labels, [imagesPath, labelsPath]);
    }

    public static (Tensor Images, Tensor Labels) Load(bool train, string dir = DefaultDir, InputText? field = null)
    {
        field ??= "fashion-mnist";
        var split = ReadSplit(train, dir, field);
        using var bytes = tensor(split.Images, new long[] { split.Count, 1, 28, 28 }, dtype: ScalarType.Byte);
        var images = bytes.to(ScalarType.Float32).div_(255f);
        using var labelBytes = tensor(split.Labels, new long[] { split.Count }, dtype: ScalarType.Byte);
        return (images, labelBytes.to(ScalarType.Int64));
    }

    public static IReadOnlyList<string> Files(string dir = DefaultDir) =>
        new[] { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" }
            .Select(f => Path.Combine(dir, f)).ToList();

    /// <summary>IDX: magic 00 00 08 ndim, ndim big-endian int32 dims, then raw unsigned bytes.</summary>
    private static (byte[] Data, int[] Dims) ReadIdx(string path, InputText field)
    {
        using var fs = File.OpenRead(path);
        using Stream s = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(fs, CompressionMode.Decompress) : fs;
        Span<byte> head = stackalloc byte[4];
        s.ReadExactly(head);
        if (head[0] != 0 || head[1] != 0 || head[2] != 0x08)
            throw new InputError(field, $"{path} is not an unsigned-byte IDX file", "Use the unmodified files of dataset-fashion-mnist.");
        var dims = new int[head[3]];
        for (int i = 0; i < dims.Length; i++)
        {
            s.ReadExactly(head);
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(head);
        }
        var data = new byte[dims.Aggregate(1L, (a, b) => a * b)];
        s.ReadExactly(data);
        return (data, dims);
    }
}
