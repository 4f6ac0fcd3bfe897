using ImgTool.Machine.Bus;
using System.Buffers.Binary;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Pci;
using ImgTool.Machine.Virtio;

namespace ImgTool.Machine.Tests.Virtio;

/// <summary>
/// A small virtio-blk driver that does what Linux's virtio_pci and virtio_blk do, through the
/// device's registers only: the status handshake, feature negotiation, queue setup, request chains
/// (direct or indirect) on the available ring, notifies, and reading the used ring.
/// </summary>
internal sealed class VirtioTestDriver
{
    public const ulong RingBase = 0x10000;
    public const ulong IndirectBase = 0x40000;

    /// <summary>Room for a 32-entry indirect table per head, below <see cref="HeaderBase"/> for every head of a 256-entry queue.</summary>
    public const ulong IndirectTableBytes = 0x200;
    public const ulong HeaderBase = 0x60000;
    public const ulong StatusBase = 0x70000;
    public const ulong DataBase = 0x100000;

    private readonly VirtioBlkPci _device;
    private readonly PhysicalMemory _memory;
    private readonly IoBus _io;
    private readonly ushort _ioBase;
    private readonly uint _mmioBase;
    private ushort _availIndex;
    private ushort _lastUsed;
    private int _nextDescriptor;

    private VirtioTestDriver(VirtioBlkPci device, PhysicalMemory memory, IoBus io, bool modern, ushort ioBase, uint mmioBase)
    {
        _device = device;
        _memory = memory;
        _io = io;
        Modern = modern;
        _ioBase = ioBase;
        _mmioBase = mmioBase;
    }

    public bool Modern { get; }

    public int QueueSize { get; private set; }

    public ulong DescriptorTable { get; private set; }

    public ulong AvailRing { get; private set; }

    public ulong UsedRing { get; private set; }

    public static VirtioTestDriver Legacy(VirtioBlkPci device, PhysicalMemory memory, IoBus io, ushort ioBase)
    {
        device.WriteConfig(PciFunction.Bar0 + VirtioBlkPci.LegacyBar * PciFunction.BarBytes, 4, ioBase);
        device.WriteConfig(PciFunction.Command, 2, PciFunction.CommandIoSpace | PciFunction.CommandBusMaster);
        return new VirtioTestDriver(device, memory, io, modern: false, ioBase, 0);
    }

    public static VirtioTestDriver ModernDriver(VirtioBlkPci device, PhysicalMemory memory, IoBus io, uint mmioBase)
    {
        device.WriteConfig(PciFunction.Bar0 + VirtioBlkPci.ModernBar * PciFunction.BarBytes, 4, mmioBase);
        device.WriteConfig(PciFunction.Command, 2, PciFunction.CommandMemorySpace | PciFunction.CommandBusMaster);
        return new VirtioTestDriver(device, memory, io, modern: true, 0, mmioBase);
    }

    // --- registers -------------------------------------------------------------------------

    public uint Common(int offset, int sizeBytes) => _memory.Read(_mmioBase + VirtioModernTransport.CommonOffset + (uint)offset, sizeBytes);

    public void Common(int offset, int sizeBytes, uint value) => _memory.Write(_mmioBase + VirtioModernTransport.CommonOffset + (uint)offset, sizeBytes, value);

    public uint LegacyRegister(int offset, int sizeBytes) => _io.In((ushort)(_ioBase + offset), sizeBytes);

    public void LegacyRegister(int offset, int sizeBytes, uint value) => _io.Out((ushort)(_ioBase + offset), sizeBytes, value);

    public byte Status
    {
        get => Modern ? (byte)Common(VirtioModernTransport.DeviceStatus, 1) : (byte)LegacyRegister(VirtioLegacyTransport.DeviceStatus, 1);
        set
        {
            if (Modern)
            {
                Common(VirtioModernTransport.DeviceStatus, 1, value);
            }
            else
            {
                LegacyRegister(VirtioLegacyTransport.DeviceStatus, 1, value);
            }
        }
    }

    public byte ReadIsr() => Modern
        ? (byte)_memory.Read8(_mmioBase + VirtioModernTransport.IsrOffset)
        : (byte)LegacyRegister(VirtioLegacyTransport.IsrStatus, 1);

    public uint ReadConfig(int offset, int sizeBytes) => Modern
        ? _memory.Read(_mmioBase + VirtioModernTransport.DeviceOffset + (uint)offset, sizeBytes)
        : LegacyRegister(VirtioLegacyTransport.DeviceConfig + offset, sizeBytes);

    public void WriteConfig(int offset, int sizeBytes, uint value)
    {
        if (Modern)
        {
            _memory.Write(_mmioBase + VirtioModernTransport.DeviceOffset + (uint)offset, sizeBytes, value);
        }
        else
        {
            LegacyRegister(VirtioLegacyTransport.DeviceConfig + offset, sizeBytes, value);
        }
    }

    public ulong DeviceFeatures()
    {
        if (!Modern)
        {
            return LegacyRegister(VirtioLegacyTransport.DeviceFeatures, 4);
        }

        Common(VirtioModernTransport.DeviceFeatureSelect, 4, 0);
        ulong low = Common(VirtioModernTransport.DeviceFeature, 4);
        Common(VirtioModernTransport.DeviceFeatureSelect, 4, 1);
        return low | ((ulong)Common(VirtioModernTransport.DeviceFeature, 4) << 32);
    }

    // --- initialization (virtio 1.1, 3.1.1) -------------------------------------------------

    /// <summary>Resets and brings the device up; false when the device refused the features.</summary>
    public bool Initialize(ulong features, int? queueSize = null)
    {
        Status = 0;
        Status = VirtioStatus.Acknowledge;
        Status = VirtioStatus.Acknowledge | VirtioStatus.Driver;
        _availIndex = _lastUsed = 0;
        _nextDescriptor = 0;
        if (Modern)
        {
            Common(VirtioModernTransport.DriverFeatureSelect, 4, 0);
            Common(VirtioModernTransport.DriverFeature, 4, (uint)features);
            Common(VirtioModernTransport.DriverFeatureSelect, 4, 1);
            Common(VirtioModernTransport.DriverFeature, 4, (uint)(features >> 32));
            Status = VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk;
            if ((Status & VirtioStatus.FeaturesOk) == 0)
            {
                Status = VirtioStatus.Failed;
                return false;
            }

            Common(VirtioModernTransport.QueueSelect, 2, 0);
            if (queueSize is { } size)
            {
                Common(VirtioModernTransport.QueueSize, 2, (uint)size);
            }

            QueueSize = (int)Common(VirtioModernTransport.QueueSize, 2);
            DescriptorTable = RingBase;
            AvailRing = RingBase + 0x1000;
            UsedRing = RingBase + 0x2000;
            Common(VirtioModernTransport.QueueDesc, 4, (uint)DescriptorTable);
            Common(VirtioModernTransport.QueueDesc + 4, 4, 0);
            Common(VirtioModernTransport.QueueDriver, 4, (uint)AvailRing);
            Common(VirtioModernTransport.QueueDriver + 4, 4, 0);
            Common(VirtioModernTransport.QueueDevice, 4, (uint)UsedRing);
            Common(VirtioModernTransport.QueueDevice + 4, 4, 0);
            Common(VirtioModernTransport.QueueEnable, 2, 1);
            Status = VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk;
        }
        else
        {
            LegacyRegister(VirtioLegacyTransport.DriverFeatures, 4, (uint)features);
            LegacyRegister(VirtioLegacyTransport.QueueSelect, 2, 0);
            QueueSize = (int)LegacyRegister(VirtioLegacyTransport.QueueSize, 2);
            DescriptorTable = RingBase;
            AvailRing = DescriptorTable + (ulong)(16 * QueueSize);
            UsedRing = (AvailRing + 6 + (ulong)(2 * QueueSize) + 4095) & ~4095ul;
            LegacyRegister(VirtioLegacyTransport.QueueAddress, 4, (uint)(RingBase >> 12));
            Status = VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.DriverOk;
        }

        // Clear the ring memory a previous run left behind.
        _memory.Ram.Slice((int)RingBase, 0x3000).Clear();
        return true;
    }

    // --- requests ----------------------------------------------------------------------------

    /// <summary>Writes descriptors for <paramref name="buffers"/> (direct, or one indirect table) and makes the chain available.</summary>
    public ushort Submit(IReadOnlyList<VirtqBuffer> buffers, bool indirect = false)
    {
        ushort head = (ushort)_nextDescriptor;
        if (indirect)
        {
            ulong table = IndirectBase + (ulong)head * IndirectTableBytes;
            for (int i = 0; i < buffers.Count; i++)
            {
                WriteDescriptor(table, i, buffers[i], next: i + 1 < buffers.Count ? (ushort)(i + 1) : null);
            }

            WriteDescriptor(DescriptorTable, head, new VirtqBuffer(table, (uint)(16 * buffers.Count), false), next: null, VirtqLayout.DescriptorFlagIndirect);
            _nextDescriptor = (_nextDescriptor + 1) % QueueSize;
        }
        else
        {
            for (int i = 0; i < buffers.Count; i++)
            {
                int index = (_nextDescriptor + i) % QueueSize;
                WriteDescriptor(DescriptorTable, index, buffers[i], next: i + 1 < buffers.Count ? (ushort)((index + 1) % QueueSize) : null);
            }

            _nextDescriptor = (_nextDescriptor + buffers.Count) % QueueSize;
        }

        MakeAvailable(head);
        return head;
    }

    /// <summary>Writes the chain starting at descriptor <paramref name="head"/> (requests in flight use disjoint ranges).</summary>
    public void SubmitAt(ushort head, IReadOnlyList<VirtqBuffer> buffers, bool indirect)
    {
        _nextDescriptor = head;
        Submit(buffers, indirect);
    }

    /// <summary>Puts <paramref name="head"/> on the available ring and publishes the new index.</summary>
    public void MakeAvailable(ushort head)
    {
        _memory.Write16((uint)(AvailRing + 4 + 2ul * (ulong)(_availIndex % QueueSize)), head);
        _availIndex++;
        _memory.Write16((uint)(AvailRing + 2), _availIndex);
    }

    public void WriteDescriptor(ulong table, int index, VirtqBuffer buffer, ushort? next, ushort extraFlags = 0)
    {
        uint at = (uint)(table + (ulong)(16 * index));
        _memory.Write32(at, (uint)buffer.Address);
        _memory.Write32(at + 4, (uint)(buffer.Address >> 32));
        _memory.Write32(at + 8, buffer.LengthBytes);
        ushort flags = (ushort)((buffer.DeviceWritable ? VirtqLayout.DescriptorFlagWrite : 0) | (next is null ? 0 : VirtqLayout.DescriptorFlagNext) | extraFlags);
        _memory.Write16(at + 12, flags);
        _memory.Write16(at + 14, next ?? 0);
    }

    public void Notify()
    {
        if (Modern)
        {
            uint notifyOff = Common(VirtioModernTransport.QueueNotifyOff, 2);
            _memory.Write16(_mmioBase + VirtioModernTransport.NotifyOffset + notifyOff * VirtioModernTransport.NotifyOffMultiplier, 0);
        }
        else
        {
            LegacyRegister(VirtioLegacyTransport.QueueNotify, 2, 0);
        }
    }

    public ushort UsedIndex => _memory.Read16((uint)(UsedRing + 2));

    /// <summary>The next used element, if the device published one.</summary>
    public (uint Id, uint Length)? PopUsed()
    {
        if (UsedIndex == _lastUsed)
        {
            return null;
        }

        uint element = (uint)(UsedRing + 4 + 8ul * (ulong)(_lastUsed % QueueSize));
        _lastUsed++;
        return (_memory.Read32(element), _memory.Read32(element + 4));
    }

    /// <summary>The buffers of a block request: header, data split in <paramref name="segments"/>, status.</summary>
    public static List<VirtqBuffer> BlockRequest(ushort slot, uint type, ulong sector, PhysicalMemory memory, ulong data, uint dataBytes, bool dataWritable, int segments)
    {
        ulong header = HeaderBase + (ulong)slot * 16;
        memory.Write32((uint)header, type);
        memory.Write32((uint)header + 4, 0);
        memory.Write32((uint)header + 8, (uint)sector);
        memory.Write32((uint)header + 12, (uint)(sector >> 32));
        ulong status = StatusBase + slot;
        memory.Write8((uint)status, 0xEE);
        var buffers = new List<VirtqBuffer> { new(header, 16, false) };
        if (dataBytes > 0)
        {
            uint piece = dataBytes / (uint)segments;
            for (int i = 0; i < segments; i++)
            {
                uint length = i == segments - 1 ? dataBytes - piece * (uint)(segments - 1) : piece;
                buffers.Add(new VirtqBuffer(data + piece * (ulong)i, length, dataWritable));
            }
        }

        buffers.Add(new VirtqBuffer(status, 1, true));
        return buffers;
    }

    public byte StatusOf(ushort slot) => _memory.Read8((uint)(StatusBase + slot));

    /// <summary>One request, notify, and its status byte.</summary>
    public byte Run(uint type, ulong sector, ulong data, uint dataBytes, bool dataWritable, int segments = 1, bool indirect = false)
    {
        ushort slot = (ushort)_nextDescriptor;
        Submit(BlockRequest(slot, type, sector, _memory, data, dataBytes, dataWritable, segments), indirect);
        Notify();
        return StatusOf(slot);
    }

    public byte SubmitRead(ulong sector, int sectors, out ulong data, int segments = 1, bool indirect = false)
    {
        data = DataBase;
        return Run(VirtioBlkRequest.TypeIn, sector, data, (uint)(sectors * 512), dataWritable: true, segments, indirect);
    }

    public byte SubmitWrite(ulong sector, ReadOnlySpan<byte> bytes, int segments = 1, bool indirect = false)
    {
        _memory.WriteBlock((uint)DataBase, bytes);
        return Run(VirtioBlkRequest.TypeOut, sector, DataBase, (uint)bytes.Length, dataWritable: false, segments, indirect);
    }

    public byte[] ReadGuest(ulong address, int length)
    {
        var bytes = new byte[length];
        _memory.ReadBlock((uint)address, bytes);
        return bytes;
    }

    public static ulong Features(params int[] bits) => bits.Aggregate(0ul, (all, bit) => all | (1ul << bit));

    internal static uint ReadLe32(ReadOnlySpan<byte> bytes) => BinaryPrimitives.ReadUInt32LittleEndian(bytes);
}
