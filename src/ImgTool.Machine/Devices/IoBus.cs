using ImgTool.Machine.Cpu;

namespace ImgTool.Machine.Devices;

/// <summary>A device's port handlers; offsets are relative to the first port it was mapped at.</summary>
internal interface IPortDevice
{
    uint Read(ushort port, int sizeBytes);

    void Write(ushort port, int sizeBytes, uint value);
}

/// <summary>
/// The ISA/PCI I/O space: 64 Ki ports, each mapped to at most one device. Reads of unmapped ports
/// float high (0xFF..), as on a PC; the first unmapped port touched is remembered for diagnosis.
/// </summary>
internal sealed class IoBus : IIoBus
{
    private readonly IPortDevice?[] _ports = new IPortDevice?[65536];

    public string? FirstUnmappedPort { get; private set; }

    public void Map(ushort first, int count, IPortDevice device)
    {
        for (int i = 0; i < count; i++)
        {
            _ports[first + i] = device;
        }
    }

    public void Unmap(ushort first, int count)
    {
        for (int i = 0; i < count; i++)
        {
            _ports[first + i] = null;
        }
    }

    public uint In(ushort port, int sizeBytes)
    {
        var device = _ports[port];
        if (device is null)
        {
            FirstUnmappedPort ??= $"in 0x{port:X4}";
            return sizeBytes == 1 ? 0xFFu : sizeBytes == 2 ? 0xFFFFu : 0xFFFFFFFFu;
        }

        return device.Read(port, sizeBytes);
    }

    public void Out(ushort port, int sizeBytes, uint value)
    {
        var device = _ports[port];
        if (device is null)
        {
            FirstUnmappedPort ??= $"out 0x{port:X4}";
            return;
        }

        device.Write(port, sizeBytes, value);
    }
}
