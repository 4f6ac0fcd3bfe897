using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Machine.Bus;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Devices;

/// <summary>
/// virtio-blk on PCI through the legacy (virtio 0.9.5) interface: device 1af4:1001 revision 0,
/// subsystem 1af4:0002, an I/O BAR0 with the legacy register layout (virtio 1.0 spec, 4.1.4.8), one
/// split virtqueue of 128 entries (2.4), requests IN, OUT, FLUSH and GET_ID (5.2.6) and INTx through
/// the PIIX PIRQ routing to the PIC (level-triggered). The backend is any <see cref="IBlockDevice"/>.
/// Requests are served synchronously at the queue notify, which keeps runs deterministic.
/// </summary>
internal sealed class VirtioBlkPci : PciFunction, IPortDevice
{
    public const int QueueSize = 128;
    private const int SectorBytes = 512;
    private const uint BarSizeBytes = 0x40;

    // Legacy register offsets in BAR0 (virtio 1.0, 4.1.4.8), then the device configuration (5.2.4).
    private const int DeviceFeatures = 0x00, GuestFeatures = 0x04, QueueAddress = 0x08, QueueSizeRegister = 0x0C,
        QueueSelect = 0x0E, QueueNotify = 0x10, DeviceStatus = 0x12, IsrStatus = 0x13, DeviceConfig = 0x14;

    // Request types and status (5.2.6).
    private const uint TypeIn = 0, TypeOut = 1, TypeFlush = 4, TypeGetId = 8;
    private const byte StatusOk = 0, StatusIoError = 1, StatusUnsupported = 2;

    // Descriptor flags (2.4.5).
    private const ushort DescNext = 1, DescWrite = 2;

    // Feature bits offered: SEG_MAX (2), BLK_SIZE (6), FLUSH (9).
    private const uint OfferedFeatures = (1u << 2) | (1u << 6) | (1u << 9);
    private const uint SegMax = QueueSize - 2;
    private const int MaxRequestBytes = 4 << 20;

    private readonly PhysicalMemory _memory;
    private readonly IoBus _io;
    private readonly IBlockDevice _disk;
    private readonly Action<bool> _setInterrupt;
    private readonly (ulong Address, uint Length, bool Write)[] _chain = new (ulong, uint, bool)[QueueSize];
    private ushort _mappedPort;
    private uint _guestFeatures;
    private uint _queuePfn;
    private ushort _queueSelect;
    private byte _status;
    private byte _isr;
    private ushort _lastAvailIndex;
    private ushort _usedIndex;

    public VirtioBlkPci(PhysicalMemory memory, IoBus io, IBlockDevice disk, Action<bool> setInterrupt)
        : base(0x1AF4, 0x1001, 0x010000, 0x00, 0x1AF4, 0x0002)
    {
        _memory = memory;
        _io = io;
        _disk = disk;
        _setInterrupt = setInterrupt;
        Config[Bar0] = 0x01; // I/O space BAR
        Config[InterruptPin] = 1; // INTA#
    }

    /// <summary>512-byte sectors read by the guest (for the run summary).</summary>
    public long SectorsRead { get; private set; }

    public long SectorsWritten { get; private set; }

    private ulong CapacitySectors => (ulong)(_disk.SizeBytes / SectorBytes);

    public override void WriteConfig(int offset, int sizeBytes, uint value)
    {
        if (offset == Bar0)
        {
            // BAR sizing: the low bits of a 64-byte I/O BAR are hard-wired (PCI 3.0, 6.2.5.1).
            uint bar = (value & ~(BarSizeBytes - 1)) | 1;
            BinaryPrimitives.WriteUInt32LittleEndian(Config.AsSpan(Bar0), bar);
            Remap();
            return;
        }

        if (offset is > Bar0 and < 0x28 or >= 0x30 and < 0x34)
        {
            return;
        }

        base.WriteConfig(offset, sizeBytes, value);
        if (offset <= Command && offset + sizeBytes > Command)
        {
            Remap();
        }
    }

    private void Remap()
    {
        if (_mappedPort != 0)
        {
            _io.Unmap(_mappedPort, (int)BarSizeBytes);
            _mappedPort = 0;
        }

        ushort port = (ushort)(BinaryPrimitives.ReadUInt32LittleEndian(Config.AsSpan(Bar0)) & 0xFFFC);
        if ((Config[Command] & 1) != 0 && port != 0 && port < 0xFFFF - BarSizeBytes)
        {
            _mappedPort = port;
            _io.Map(port, (int)BarSizeBytes, this);
        }
    }

    public uint Read(ushort port, int sizeBytes)
    {
        int offset = port;
        switch (offset)
        {
            case DeviceFeatures: return OfferedFeatures;
            case GuestFeatures: return _guestFeatures;
            case QueueAddress: return _queueSelect == 0 ? _queuePfn : 0;
            case QueueSizeRegister: return _queueSelect == 0 ? QueueSize : 0u;
            case QueueSelect: return _queueSelect;
            case DeviceStatus: return _status;
            case IsrStatus:
            {
                uint isr = _isr;
                _isr = 0;
                _setInterrupt(false);
                return isr;
            }
        }

        if (offset >= DeviceConfig)
        {
            Span<byte> config = stackalloc byte[24];
            BinaryPrimitives.WriteUInt64LittleEndian(config, CapacitySectors);
            BinaryPrimitives.WriteUInt32LittleEndian(config[8..], 0); // size_max (not offered)
            BinaryPrimitives.WriteUInt32LittleEndian(config[12..], SegMax);
            BinaryPrimitives.WriteUInt32LittleEndian(config[20..], SectorBytes); // blk_size
            uint value = 0;
            for (int i = 0; i < sizeBytes; i++)
            {
                int at = offset - DeviceConfig + i;
                value |= (uint)(at < config.Length ? config[at] : 0) << (8 * i);
            }

            return value;
        }

        return 0;
    }

    public void Write(ushort port, int sizeBytes, uint value)
    {
        switch (port)
        {
            case GuestFeatures: _guestFeatures = value & OfferedFeatures; break;
            case QueueAddress:
                if (_queueSelect == 0)
                {
                    _queuePfn = value;
                    _lastAvailIndex = 0;
                    _usedIndex = 0;
                }

                break;
            case QueueSelect: _queueSelect = (ushort)value; break;
            case QueueNotify:
                if (value == 0 && _queuePfn != 0)
                {
                    ProcessQueue();
                }

                break;
            case DeviceStatus:
                _status = (byte)value;
                if (_status == 0)
                {
                    // Writing 0 resets the device (virtio 1.0, 2.1.2).
                    _queuePfn = 0;
                    _guestFeatures = 0;
                    _isr = 0;
                    _setInterrupt(false);
                }

                break;
        }
    }

    // Legacy split-ring layout (virtio 1.0, 2.4.2): descriptors, then the available ring, then the
    // used ring at the next 4096-byte boundary.
    private uint DescriptorTable => _queuePfn << 12;

    private uint AvailRing => DescriptorTable + 16 * QueueSize;

    private uint UsedRing => (AvailRing + 6 + 2 * QueueSize + 4095) & ~4095u;

    private void ProcessQueue()
    {
        ushort availIndex = _memory.Read16(AvailRing + 2);
        int processed = 0;
        while (_lastAvailIndex != availIndex && processed++ < QueueSize)
        {
            ushort head = _memory.Read16(AvailRing + 4 + 2u * (uint)(_lastAvailIndex % QueueSize));
            _lastAvailIndex++;
            uint written = ServeRequest(head);
            uint usedSlot = UsedRing + 4 + 8u * (uint)(_usedIndex % QueueSize);
            _memory.Write32(usedSlot, head);
            _memory.Write32(usedSlot + 4, written);
            _usedIndex++;
            _memory.Write16(UsedRing + 2, _usedIndex);
        }

        // Interrupt unless the driver suppressed it (VRING_AVAIL_F_NO_INTERRUPT, 2.4.7).
        if (processed > 0 && (_memory.Read16(AvailRing) & 1) == 0)
        {
            _isr |= 1;
            _setInterrupt(true);
        }
    }

    /// <summary>Serves one descriptor chain; returns the bytes written into guest buffers.</summary>
    private uint ServeRequest(ushort head)
    {
        var chain = _chain.AsSpan();
        int count = 0;
        ushort index = head;
        while (true)
        {
            if (index >= QueueSize || count >= QueueSize)
            {
                return 0; // malformed chain: a bad index or a loop; nothing is completed into memory
            }

            uint descriptor = DescriptorTable + 16u * index;
            ulong address = _memory.Read32(descriptor) | ((ulong)_memory.Read32(descriptor + 4) << 32);
            uint length = _memory.Read32(descriptor + 8);
            ushort flags = _memory.Read16(descriptor + 12);
            chain[count++] = (address, length, (flags & DescWrite) != 0);
            if ((flags & DescNext) == 0)
            {
                break;
            }

            index = _memory.Read16(descriptor + 14);
        }

        // Header (16 bytes, device-readable), data buffers, status byte (device-writable, last).
        if (count < 2 || chain[0].Length < 16 || chain[count - 1].Length < 1 || !chain[count - 1].Write)
        {
            return 0;
        }

        uint header = (uint)chain[0].Address;
        uint type = _memory.Read32(header);
        ulong sector = _memory.Read32(header + 8) | ((ulong)_memory.Read32(header + 12) << 32);
        var (statusAddress, _, _) = chain[count - 1];
        byte status = StatusOk;
        uint written = 1;
        var data = chain[1..(count - 1)];
        switch (type)
        {
            case TypeIn:
            case TypeOut:
                status = Transfer(type == TypeIn, sector, data, ref written);
                break;
            case TypeFlush:
                _disk.FlushAsync().AsTask().GetAwaiter().GetResult();
                break;
            case TypeGetId:
            {
                // A 20-byte serial number string (5.2.6.4).
                Span<byte> id = stackalloc byte[20];
                "imgtool-boot"u8.CopyTo(id);
                if (data.Length > 0 && data[0].Write)
                {
                    int length = (int)Math.Min(20, data[0].Length);
                    _memory.WriteBlock((uint)data[0].Address, id[..length]);
                    written += (uint)length;
                }

                break;
            }

            default:
                status = StatusUnsupported;
                break;
        }

        _memory.Write8((uint)statusAddress, status);
        return written;
    }

    private byte Transfer(bool read, ulong sector, ReadOnlySpan<(ulong Address, uint Length, bool Write)> buffers, ref uint written)
    {
        long total = 0;
        foreach (var b in buffers)
        {
            if (b.Write != read || b.Length > MaxRequestBytes)
            {
                return StatusIoError;
            }

            total += b.Length;
        }

        if (total % SectorBytes != 0 || total > MaxRequestBytes || sector > CapacitySectors || (ulong)total / SectorBytes > CapacitySectors - sector)
        {
            return StatusIoError;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(1, total));
        try
        {
            var span = buffer.AsMemory(0, (int)total);
            long offsetBytes = (long)sector * SectorBytes;
            if (read)
            {
                _disk.ReadAsync(offsetBytes, span).AsTask().GetAwaiter().GetResult();
                int at = 0;
                foreach (var b in buffers)
                {
                    _memory.WriteBlock((uint)b.Address, buffer.AsSpan(at, (int)b.Length));
                    at += (int)b.Length;
                }

                written += (uint)total;
                SectorsRead += total / SectorBytes;
            }
            else
            {
                int at = 0;
                foreach (var b in buffers)
                {
                    _memory.ReadBlock((uint)b.Address, buffer.AsSpan(at, (int)b.Length));
                    at += (int)b.Length;
                }

                _disk.WriteAsync(offsetBytes, span).AsTask().GetAwaiter().GetResult();
                SectorsWritten += total / SectorBytes;
            }
        }
        catch (IOException)
        {
            return StatusIoError;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return StatusOk;
    }
}
