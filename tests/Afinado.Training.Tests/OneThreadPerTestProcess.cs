using System.Runtime.CompilerServices;

namespace Afinado.Training.Tests;

internal static class OneThreadPerTestProcess
{
    /// <summary>
    /// xunit runs test classes in parallel and CI's 2 cores are shared with other test assemblies: one libtorch thread
    /// per process avoids OpenMP barriers waiting on descheduled threads (20× slower when oversubscribed).
    /// </summary>
    [ModuleInitializer]
    internal static void Init() => TorchSharp.torch.set_num_threads(1);
}
