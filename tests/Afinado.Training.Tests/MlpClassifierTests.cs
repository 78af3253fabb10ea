using Afinado.Training.Models;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Afinado.Training.Tests;

/// <summary>The one MLP: the class-split recipe's weights files (written by the Sequential fc1–relu–fc2 it used before
/// the fold) keep loading, and a seeded model starts from the same weights.</summary>
public class MlpClassifierTests
{
    [Fact]
    public void Parameters_are_named_fc1_to_fcN_and_the_last_layer_alone_can_train()
    {
        using var mlp = new MlpClassifier([784, 32, 16, 10]);
        Assert.Equal(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"], mlp.named_parameters().Select(p => p.name));
        Assert.Equal(16 * 10 + 10, mlp.FreezeAllButLastLayer());
        Assert.Equal(["fc3.weight", "fc3.bias"], mlp.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name));
        Assert.Equal(784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10, mlp.ParameterCount);
    }

    [Fact]
    public void A_weights_file_of_the_former_sequential_classifier_loads_and_gives_the_same_logits()
    {
        var path = Path.GetTempFileName();
        try
        {
            torch.manual_seed(7);
            using var former = Sequential(("fc1", Linear(784, 32)), ("relu", ReLU()), ("fc2", Linear(32, 10)));
            former.save(path);
            torch.manual_seed(7);
            using var seeded = new MlpClassifier([784, 32, 10]);
            using var loaded = new MlpClassifier([784, 32, 10]);
            loaded.load(path);
            using var x = rand(5, 784);
            using var expected = former.call(x);
            using var fromFile = loaded.call(x);
            using var fromSeed = seeded.call(x);
            Assert.True(expected.allclose(fromFile, rtol: 0, atol: 0), "the file's weights give other logits");
            Assert.True(expected.allclose(fromSeed, rtol: 0, atol: 0), "the same seed starts from other weights");
        }
        finally { File.Delete(path); }
    }
}
