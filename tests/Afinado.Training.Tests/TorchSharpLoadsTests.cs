using static TorchSharp.torch;

namespace Afinado.Training.Tests;

public class TorchSharpLoadsTests
{
    /// <summary>Fails if the Debian 12 GLIBCXX fix (build/TorchSharpGlibcxxFix.targets) did not patch the natives.</summary>
    [Fact]
    public void Native_library_loads_and_multiplies()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var b = a.matmul(a);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, b.data<float>().ToArray());
    }
}
