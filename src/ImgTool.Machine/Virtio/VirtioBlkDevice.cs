using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Devices;

namespace ImgTool.Machine.Virtio;

/// <summary>How a virtio-blk device starts.</summary>
/// <param name="QueueSize">Entries of its one virtqueue, a power of two up to 256; QEMU's default (since 5.0) is 256, so seg_max is 254.</param>
/// <param name="WriteCache">The guest-visible volatile write cache (the config's writeback byte) after reset.</param>
/// <param name="Serial">The GET_ID answer, at most 20 ASCII bytes.</param>
internal sealed record VirtioBlkOptions(int QueueSize = VirtioBlkOptions.DefaultQueueSize, bool WriteCache = true, string Serial = VirtioBlkOptions.DefaultSerial)
{
    public const int DefaultQueueSize = 256;
    public const string DefaultSerial = "imgtool-boot";
}

/// <summary>
/// The virtio block device (virtio 1.1, 5.2) over an <see cref="IBlockDevice"/>: one request queue
/// serving IN, OUT, FLUSH and GET_ID, synchronously at the notify, every available chain in turn,
/// which keeps runs deterministic. Data moves through one buffer the device owns, a bounded chunk at
/// a time, so a request of any size allocates nothing. A backend failure completes that request with
/// VIRTIO_BLK_S_IOERR; a malformed chain breaks the device (NEEDS_RESET). With the write cache off
/// (writeback byte 0, 5.2.5), each write is flushed to the backend before it completes.
/// </summary>
internal sealed class VirtioBlkDevice : VirtioDevice
{
    public const ushort BlockDeviceType = 2;

    /// <summary>The largest piece of a request handed to the backend at once.</summary>
    public const int ChunkBytes = 512 << 10;

    private readonly IBlockDevice _disk;
    private readonly VirtioBlkOptions _options;
    private readonly ulong _offeredFeatures;
    private readonly byte[] _chunk = new byte[ChunkBytes];
    private readonly byte[] _serial = new byte[VirtioBlkRequest.IdBytes];

    public VirtioBlkDevice(GuestRam ram, IBlockDevice disk, VirtioBlkOptions options, bool modernInterface)
        : base(ram, queueCount: 1, options.QueueSize)
    {
        _disk = disk;
        _options = options;
        Encoding.ASCII.GetBytes(options.Serial.AsSpan(0, Math.Min(options.Serial.Length, VirtioBlkRequest.IdBytes)), _serial);
        _offeredFeatures =
            VirtioFeature.Bit(VirtioFeature.BlkSegMax) | VirtioFeature.Bit(VirtioFeature.BlkGeometry) |
            VirtioFeature.Bit(VirtioFeature.BlkBlockSize) | VirtioFeature.Bit(VirtioFeature.BlkFlush) |
            VirtioFeature.Bit(VirtioFeature.BlkConfigWce) |
            VirtioFeature.Bit(VirtioFeature.RingIndirectDesc) | VirtioFeature.Bit(VirtioFeature.RingEventIdx) |
            (disk.IsReadOnly ? VirtioFeature.Bit(VirtioFeature.BlkReadOnly) : 0) |
            (modernInterface ? VirtioFeature.Bit(VirtioFeature.Version1) : 0);
        WriteCacheEnabled = options.WriteCache;
    }

    public override ushort DeviceType => BlockDeviceType;

    public override ulong OfferedFeatures => _offeredFeatures;

    public override int ConfigBytes => VirtioBlkConfig.SizeBytes;

    /// <summary>The guest-visible write cache: on, writes complete before they are durable until a FLUSH.</summary>
    public bool WriteCacheEnabled { get; private set; }

    public long SectorsRead { get; private set; }

    public long SectorsWritten { get; private set; }

    /// <summary>Flushes that reached the backend (FLUSH requests and writethrough writes).</summary>
    public long BackendFlushes { get; private set; }

    /// <summary>Requests completed with VIRTIO_BLK_S_IOERR because the backend failed.</summary>
    public long HostErrors { get; private set; }

    /// <summary>The last backend failure's message, for a diagnosis.</summary>
    public string? LastHostError { get; private set; }

    public ulong CapacitySectors => (ulong)_disk.SizeBytes / VirtioBlkRequest.SectorBytes;

    public override byte ReadConfigByte(int offset)
    {
        if ((uint)offset >= VirtioBlkConfig.SizeBytes)
        {
            return 0;
        }

        Span<byte> config = stackalloc byte[VirtioBlkConfig.SizeBytes];
        FillConfig(config);
        return config[offset];
    }

    public override void WriteConfigByte(int offset, byte value)
    {
        // Only the writeback byte is the driver's to write (5.2.5: with CONFIG_WCE it toggles the cache).
        if (offset == VirtioBlkConfig.Writeback)
        {
            WriteCacheEnabled = value != 0;
        }
    }

    protected override void OnFeaturesNegotiated(ulong features)
    {
        // A driver that cannot toggle the cache and never flushes must not lose writes (5.2.5.1; QEMU
        // likewise makes the cache follow FLUSH when CONFIG_WCE is not negotiated).
        if (!VirtioFeature.Has(features, VirtioFeature.BlkConfigWce))
        {
            WriteCacheEnabled = _options.WriteCache && VirtioFeature.Has(features, VirtioFeature.BlkFlush);
        }
    }

    protected override void OnReset() => WriteCacheEnabled = _options.WriteCache;

    protected override void ProcessQueue(SplitVirtqueue queue)
    {
        ushort usedBefore = queue.UsedIndex;
        // Every entry available now (several requests in flight); bounded, as a ring holds at most Size.
        for (int served = 0; served < queue.Size; served++)
        {
            var popped = queue.TryPop();
            if (popped == VirtqPopResult.Empty)
            {
                break;
            }

            if (popped == VirtqPopResult.Malformed)
            {
                MarkBroken(queue.MalformedReason ?? "a malformed descriptor chain");
                break;
            }

            if (!TryServe(queue.Chain, out uint writtenBytes))
            {
                MarkBroken("a request without its 16-byte header or its status byte");
                break;
            }

            queue.Push(queue.Chain.Head, writtenBytes);
        }

        if (queue.NeedsInterrupt(usedBefore))
        {
            RaiseQueueInterrupt();
        }
    }

    private void FillConfig(Span<byte> config)
    {
        config.Clear();
        ulong capacity = CapacitySectors;
        BinaryPrimitives.WriteUInt64LittleEndian(config[VirtioBlkConfig.Capacity..], capacity);
        // Two descriptors of a chain carry the header and the status byte (QEMU: queue size - 2).
        BinaryPrimitives.WriteUInt32LittleEndian(config[VirtioBlkConfig.SegMax..], (uint)(Queues[0].DeviceMaxSize - 2));
        ulong cylinders = Math.Min(capacity / (VirtioBlkConfig.Heads * VirtioBlkConfig.SectorsPerTrack), ushort.MaxValue);
        BinaryPrimitives.WriteUInt16LittleEndian(config[VirtioBlkConfig.GeometryCylinders..], (ushort)cylinders);
        config[VirtioBlkConfig.GeometryHeads] = VirtioBlkConfig.Heads;
        config[VirtioBlkConfig.GeometrySectors] = VirtioBlkConfig.SectorsPerTrack;
        BinaryPrimitives.WriteUInt32LittleEndian(config[VirtioBlkConfig.BlockSize..], VirtioBlkRequest.SectorBytes);
        config[VirtioBlkConfig.Writeback] = WriteCacheEnabled ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(config[VirtioBlkConfig.NumQueues..], (ushort)Queues.Count);
    }

    /// <summary>Serves one chain; false when it is malformed (no header, no status byte).</summary>
    private bool TryServe(VirtqChain chain, out uint writtenBytes)
    {
        writtenBytes = 0;
        if (chain.ReadableBytes < VirtioBlkRequest.HeaderBytes || chain.WritableBytes < 1)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[VirtioBlkRequest.HeaderBytes];
        chain.ReadFrom(Ram, 0, header);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header[VirtioBlkRequest.Type..]);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[VirtioBlkRequest.Sector..]);

        // The status is the last writable byte; data sits between the header and it (5.2.6).
        ulong statusOffset = chain.WritableBytes - 1;
        ulong dataWritten = 0;
        byte status;
        switch (type)
        {
            case VirtioBlkRequest.TypeIn:
                status = Transfer(chain, read: true, sector, chain.WritableBytes - 1);
                dataWritten = status == VirtioBlkRequest.StatusOk ? chain.WritableBytes - 1 : 0;
                break;
            case VirtioBlkRequest.TypeOut:
                status = _disk.IsReadOnly
                    ? VirtioBlkRequest.StatusIoError
                    : Transfer(chain, read: false, sector, chain.ReadableBytes - VirtioBlkRequest.HeaderBytes);
                break;
            case VirtioBlkRequest.TypeFlush:
                status = Flush();
                break;
            case VirtioBlkRequest.TypeGetId:
            {
                int length = (int)Math.Min(VirtioBlkRequest.IdBytes, chain.WritableBytes - 1);
                chain.WriteTo(Ram, 0, _serial.AsSpan(0, length));
                dataWritten = (ulong)length;
                status = VirtioBlkRequest.StatusOk;
                break;
            }

            default:
                status = VirtioBlkRequest.StatusUnsupported;
                break;
        }

        chain.WriteTo(Ram, statusOffset, [status]);
        writtenBytes = (uint)Math.Min(uint.MaxValue, dataWritten + 1);
        return true;
    }

    private byte Transfer(VirtqChain chain, bool read, ulong sector, ulong lengthBytes)
    {
        ulong capacity = CapacitySectors;
        if (lengthBytes % VirtioBlkRequest.SectorBytes != 0 || sector > capacity ||
            lengthBytes / VirtioBlkRequest.SectorBytes > capacity - sector)
        {
            return VirtioBlkRequest.StatusIoError;
        }

        long diskOffset = (long)sector * VirtioBlkRequest.SectorBytes;
        try
        {
            for (ulong done = 0; done < lengthBytes;)
            {
                int length = (int)Math.Min(ChunkBytes, lengthBytes - done);
                var piece = _chunk.AsMemory(0, length);
                if (read)
                {
                    Wait(_disk.ReadAsync(diskOffset + (long)done, piece));
                    chain.WriteTo(Ram, done, piece.Span);
                }
                else
                {
                    chain.ReadFrom(Ram, VirtioBlkRequest.HeaderBytes + done, piece.Span);
                    Wait(_disk.WriteAsync(diskOffset + (long)done, piece));
                }

                done += (ulong)length;
            }

            if (!read && !WriteCacheEnabled)
            {
                // Writethrough: durable before it completes.
                Wait(_disk.FlushAsync());
                BackendFlushes++;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return HostError(e);
        }

        long sectors = (long)(lengthBytes / VirtioBlkRequest.SectorBytes);
        if (read)
        {
            SectorsRead += sectors;
        }
        else
        {
            SectorsWritten += sectors;
        }

        return VirtioBlkRequest.StatusOk;
    }

    private byte Flush()
    {
        try
        {
            Wait(_disk.FlushAsync());
            BackendFlushes++;
            return VirtioBlkRequest.StatusOk;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return HostError(e);
        }
    }

    private byte HostError(Exception e)
    {
        HostErrors++;
        LastHostError = e.Message;
        return VirtioBlkRequest.StatusIoError;
    }

    /// <summary>The CPU waits for the disk: requests complete before the notify returns.</summary>
    private static void Wait(ValueTask pending)
    {
        if (pending.IsCompletedSuccessfully)
        {
            pending.GetAwaiter().GetResult();
        }
        else
        {
            pending.AsTask().GetAwaiter().GetResult();
        }
    }
}
