using System.Buffers.Binary;
using System.IO.Compression;
using Afinado.Planner;
using static TorchSharp.torch;

namespace Afinado.Training.LearningRules.Data;

/// <summary>
/// Reads the gzip-compressed IDX files of Debian's dataset-fashion-mnist. Images become float32 [N, 1, 28, 28] in [0, 1],
/// labels int64 [N]. Minimal on purpose: the training engine's shared loader replaces it once it lands.
/// </summary>
public static class FashionMnistIdx
{
    public const string DefaultDir = "/usr/share/datasets/fashion-mnist";

    public static (Tensor Images, Tensor Labels) Load(string split, string dir = DefaultDir)
    {
        var prefix = split switch
        {
            "train" => "train",
            "test" => "t10k",
            _ => throw new InputError("split", $"'{split}' is not a Fashion-MNIST split", "Use 'train' or 'test'."),
        };
        var imagePath = Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz");
        var labelPath = Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz");
        if (!File.Exists(imagePath) || !File.Exists(labelPath))
            throw new InputError("--data", $"Fashion-MNIST files not found in {dir}", "Install them with `apt-get install dataset-fashion-mnist` or pass the folder that holds the IDX .gz files.");
        var (img, idim) = ReadIdx(imagePath);
        var (lab, ldim) = ReadIdx(labelPath);
        if (idim.Length != 3 || ldim.Length != 1 || idim[0] != ldim[0])
            throw new InputError("--data", $"{imagePath} and {labelPath} do not form an image/label pair", "Use the unmodified files of dataset-fashion-mnist.");
        using var scope = NewDisposeScope();
        var images = tensor(img, new long[] { idim[0], 1, idim[1], idim[2] }, dtype: ScalarType.Byte).to(ScalarType.Float32).div_(255f);
        var labels = tensor(lab, new long[] { ldim[0] }, dtype: ScalarType.Byte).to(ScalarType.Int64);
        return (images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    /// <summary>IDX: bytes 0,0, dtype (0x08 = ubyte), ndim; then ndim big-endian int32 sizes; then the raw data.</summary>
    private static (byte[] Data, int[] Dims) ReadIdx(string path)
    {
        using var fs = File.OpenRead(path);
        using var s = new GZipStream(fs, CompressionMode.Decompress);
        Span<byte> head = stackalloc byte[4];
        s.ReadExactly(head);
        if (head[0] != 0 || head[1] != 0 || head[2] != 0x08)
            throw new InputError("--data", $"{path} is not an unsigned-byte IDX file", "Use the unmodified files of dataset-fashion-mnist.");
        var dims = new int[head[3]];
        Span<byte> d = stackalloc byte[4];
        for (int i = 0; i < dims.Length; i++) { s.ReadExactly(d); dims[i] = BinaryPrimitives.ReadInt32BigEndian(d); }
        var data = new byte[dims.Aggregate(1L, (a, b) => a * b)];
        s.ReadExactly(data);
        return (data, dims);
    }
}
