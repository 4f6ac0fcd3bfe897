using ImgTool.Machine.Cpu;
using ImgTool.Machine.Tracing;

namespace ImgTool.Machine.Bus;

/// <summary>
/// The ISA/PCI I/O space: 64 Ki ports, each mapped to at most one device. Reads of unmapped ports
/// float high (0xFF..) and writes are dropped, as on a PC. Accesses to unmapped ports are counted
/// (<see cref="UnmappedPorts"/>): firmware probes for hardware it may not find (SeaBIOS writes the
/// DMA controller's ports, for instance), so such an access is information for a diagnosis, not a cause.
/// </summary>
internal sealed class IoBus : IIoBus
{
    /// <summary>Distinct (port, direction) pairs remembered; a guest sweeping the I/O space cannot grow the table further.</summary>
    public const int MaxUnmappedPortsTracked = 256;

    private const int PortCount = 1 << 16;

    private readonly IPortDevice?[] _ports = new IPortDevice?[PortCount];

    /// <summary>For each port, the first port of the range its device was mapped at (handlers get offsets).</summary>
    private readonly ushort[] _rangeFirst = new ushort[PortCount];
    private readonly Dictionary<int, UnmappedPortAccess> _unmapped = [];

    /// <summary>The retired-instruction count, to date accesses; set by the machine once the CPU exists.</summary>
    public Func<long> InstructionClock { get; set; } = () => 0;

    /// <summary>When set, every port access is recorded (imgtool boot --trace).</summary>
    public ExecutionTrace? Trace { get; set; }

    /// <summary>
    /// Unmapped ports the guest touched, the most recently accessed first (what the guest did last is
    /// what a diagnosis looks at; the firmware's early probing comes last); at most <see cref="MaxUnmappedPortsTracked"/>.
    /// </summary>
    public IReadOnlyList<UnmappedPortAccess> UnmappedPorts =>
        _unmapped.Values.OrderByDescending(access => access.LastInstruction).ThenBy(access => access.Port).ToArray();

    /// <summary>
    /// Decodes ports <paramref name="first"/>..first+count-1 to <paramref name="device"/>, which sees
    /// offsets from <paramref name="first"/>. A later mapping of some of those ports takes them over
    /// (the PIIX3 claims byte port 0xCF9 inside the PCI configuration address register).
    /// </summary>
    public void Map(ushort first, int count, IPortDevice device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(first + count, PortCount);
        for (int i = 0; i < count; i++)
        {
            _ports[first + i] = device;
            _rangeFirst[first + i] = first;
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
        uint value;
        if (device is null)
        {
            NoteUnmapped(port, write: false);
            value = sizeBytes == 1 ? 0xFFu : sizeBytes == 2 ? 0xFFFFu : 0xFFFFFFFFu;
        }
        else
        {
            value = device.Read((ushort)(port - _rangeFirst[port]), sizeBytes);
        }

        Trace?.PortIn(port, sizeBytes, value, device is null);
        return value;
    }

    public void Out(ushort port, int sizeBytes, uint value)
    {
        var device = _ports[port];
        Trace?.PortOut(port, sizeBytes, value, device is null);
        if (device is null)
        {
            NoteUnmapped(port, write: true);
            return;
        }

        device.Write((ushort)(port - _rangeFirst[port]), sizeBytes, value);
    }

    private void NoteUnmapped(ushort port, bool write)
    {
        long now = InstructionClock();
        int key = write ? port | 0x10000 : port;
        if (_unmapped.TryGetValue(key, out var access))
        {
            access.Count++;
            access.LastInstruction = now;
        }
        else if (_unmapped.Count < MaxUnmappedPortsTracked)
        {
            _unmapped.Add(key, new UnmappedPortAccess(port, write) { Count = 1, FirstInstruction = now, LastInstruction = now });
        }
    }
}

/// <summary>The accesses to one unmapped port in one direction.</summary>
internal sealed class UnmappedPortAccess(ushort port, bool write)
{
    public ushort Port { get; } = port;

    public bool Write { get; } = write;

    public long Count { get; set; }

    /// <summary>Retired-instruction count at the first and the latest access.</summary>
    public long FirstInstruction { get; set; }

    public long LastInstruction { get; set; }
}
