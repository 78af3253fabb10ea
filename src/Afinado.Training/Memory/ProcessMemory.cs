using System.Runtime.InteropServices;

namespace Afinado.Training.Memory;

/// <summary>
/// Peak memory of this process's tensors on CPU, measured as the growth of the kernel's resident high-water mark
/// (VmHWM) over a baseline. libtorch has no CPU allocator statistics, and by default glibc keeps freed blocks, so RSS
/// overstates live tensors by up to ~1.8×. <see cref="TameMalloc"/> sets a fixed 128 KiB mmap threshold (every tensor
/// buffer above it is mmap'ed and returned to the OS on free) and a low trim threshold; VmHWM then follows live bytes.
/// The precision of this method is checked by a test on known allocations.
/// </summary>
public static class ProcessMemory
{
    private const int M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3;
    private static bool tamed;

    /// <summary>The environment route to the same fixed threshold, for a child process measured from its start (the
    /// Fashion-MNIST bench runs each job in one): glibc reads it before any allocation.</summary>
    public const string MmapThresholdVariable = "MALLOC_MMAP_THRESHOLD_";
    public const string MmapThresholdValue = "131072";

    /// <summary>This process runs with the fixed mmap threshold that makes VmHWM follow live bytes: set by
    /// <see cref="TameMalloc"/>, or by <see cref="MmapThresholdVariable"/> at its start.</summary>
    public static bool MallocTamed => tamed || Environment.GetEnvironmentVariable(MmapThresholdVariable) == MmapThresholdValue;
    internal static int MmapThreshold = int.TryParse(Environment.GetEnvironmentVariable("AFINADO_MMAP_THRESHOLD"), out var t) ? t : 128 * 1024;

    [DllImport("libc", EntryPoint = "mallopt")] private static extern int MallOpt(int param, int value);
    [DllImport("libc", EntryPoint = "malloc_trim")] private static extern int MallocTrim(nuint pad);

    public static void TameMalloc()
    {
        if (tamed || !OperatingSystem.IsLinux()) return;
        MallOpt(M_MMAP_THRESHOLD, MmapThreshold);
        MallOpt(M_TRIM_THRESHOLD, MmapThreshold);
        tamed = true;
    }

    public static void Trim()
    {
        if (OperatingSystem.IsLinux()) MallocTrim(0);
    }

    public static long ResidentBytes => ReadStatus("VmRSS");
    public static long PeakResidentBytes => ReadStatus("VmHWM");

    /// <summary>Resets VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs).</summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static long ReadStatus(string key)
    {
        if (!File.Exists("/proc/self/status")) return -1;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0]) * 1024;
        return -1;
    }
}

/// <summary>Measures the peak growth of resident memory between <see cref="Start"/> and <see cref="PeakBytes"/>.</summary>
public sealed class PeakMeter
{
    private long baseline;

    public bool Available { get; private set; }

    /// <summary>Trims malloc, resets the high-water mark and takes the current RSS as baseline.</summary>
    public void Start()
    {
        ProcessMemory.TameMalloc();
        GC.Collect();
        ProcessMemory.Trim();
        Available = ProcessMemory.ResetPeak();
        baseline = ProcessMemory.ResidentBytes;
    }

    public long BaselineBytes => baseline;

    /// <summary>Peak RSS growth since <see cref="Start"/>, in bytes (null where /proc is not available).</summary>
    public long? PeakBytes => Available ? Math.Max(0, ProcessMemory.PeakResidentBytes - baseline) : null;
}
