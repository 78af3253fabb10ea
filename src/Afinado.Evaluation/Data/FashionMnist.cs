using Afinado.Planner;

namespace Afinado.Evaluation.Data;

/// <summary>
/// Fashion-MNIST as the evaluation experiments use it: the raw uint8 pixels and labels of one split (read by the training
/// library's one reader, <see cref="Training.Data.FashionMnist.ReadSplit"/>), subsampled by class and turned into arrays.
/// </summary>
public sealed class FashionMnist
{
    public const string DefaultDir = Training.Data.FashionMnist.DefaultDir;
    public const int Pixels = Training.Data.FashionMnist.Pixels;

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
        bool train = split switch
        {
            "train" => true,
            "test" => false,
            _ => throw new InputError("split", $"'{split}' is not a Fashion-MNIST split", "Use 'train' or 'test'."),
        };
        var read = Training.Data.FashionMnist.ReadSplit(train, dir);
        return new FashionMnist(read.Images, read.Labels, read.Files);
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
