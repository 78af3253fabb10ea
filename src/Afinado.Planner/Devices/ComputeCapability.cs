namespace Afinado.Planner.Devices;

/// <summary>
/// A CUDA GPU's compute capability (<c>torch.cuda.get_device_capability()</c>): what kernels it runs. Libraries choose by
/// it at load time, e.g. transformers dequantizes MXFP4 below 7.5 and FP8 below 8.9 (<see cref="Fit.DeviceSupport"/>).
/// </summary>
public readonly record struct ComputeCapability(int Major, int Minor) : IComparable<ComputeCapability>
{
    public int CompareTo(ComputeCapability other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public bool IsBelow(ComputeCapability other) => CompareTo(other) < 0;

    public override string ToString() => $"{Major}.{Minor}";
}
