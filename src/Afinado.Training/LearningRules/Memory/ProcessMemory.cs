using System.Runtime.InteropServices;

namespace Afinado.Training.LearningRules.Memory;

/// <summary>
/// Process-level memory on Linux (TorchSharp has no CPU allocator statistics): VmRSS now and VmHWM peak from
/// /proc/self/status, the peak reset by writing 5 to /proc/self/clear_refs. The numbers only track tensor memory
/// when glibc returns frees to the OS, so measuring processes run with MALLOC_MMAP_THRESHOLD_=131072.
/// </summary>
public static class ProcessMemory
{
    public const string MmapThresholdVariable = "MALLOC_MMAP_THRESHOLD_";
    public const string MmapThresholdValue = "131072";

    public static long RssBytes => ReadKiB("VmRSS") * 1024;
    public static long PeakBytes => ReadKiB("VmHWM") * 1024;

    /// <summary>True when this process runs with the fixed mmap threshold that makes VmHWM meaningful.</summary>
    public static bool MallocTamed => Environment.GetEnvironmentVariable(MmapThresholdVariable) == MmapThresholdValue;

    /// <summary>Sets VmHWM back to the current RSS; false where /proc/self/clear_refs is not writable.</summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>Returns freed heap memory to the OS so the next baseline is not inflated by old garbage.</summary>
    public static void Trim()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (OperatingSystem.IsLinux()) MallocTrim(0);
    }

    private static long ReadKiB(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0]);
        throw new InvalidOperationException($"/proc/self/status has no {key} line");
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
