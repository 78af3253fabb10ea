using System.Globalization;

namespace Afinado.Training.Memory;

/// <summary>
/// Memory this process could still allocate: the kernel's MemAvailable (free plus reclaimable page cache, /proc/meminfo)
/// and, inside a container, what the cgroup v2 limit leaves (memory.max − memory.current); the smaller of the two.
/// </summary>
public static class SystemMemory
{
    public static long? AvailableBytes()
    {
        long? available = MemAvailable();
        if (CgroupHeadroom() is { } cg) available = available is { } a ? Math.Min(a, cg) : cg;
        return available;
    }

    private static long? MemAvailable()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], NumberStyles.None, CultureInfo.InvariantCulture, out long kb))
                    return kb * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    private static long? CgroupHeadroom()
    {
        try
        {
            string max = File.ReadAllText("/sys/fs/cgroup/memory.max").Trim(), current = File.ReadAllText("/sys/fs/cgroup/memory.current").Trim();
            if (max == "max" || !long.TryParse(max, CultureInfo.InvariantCulture, out long limit) || !long.TryParse(current, CultureInfo.InvariantCulture, out long used))
                return null;
            return Math.Max(0, limit - used);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
