namespace ImgTool.Machine.Virtio;

/// <summary>Device status bits (virtio 1.1, 2.1).</summary>
internal static class VirtioStatus
{
    public const byte Acknowledge = 1, Driver = 2, DriverOk = 4, FeaturesOk = 8, DeviceNeedsReset = 64, Failed = 128;
}
