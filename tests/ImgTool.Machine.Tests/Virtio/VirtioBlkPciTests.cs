using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Virtio;

namespace ImgTool.Machine.Tests.Virtio;

/// <summary>virtio-blk driven through its registers, as Linux drives it, against an in-memory disk.</summary>
public sealed class VirtioBlkPciTests
{
    private const uint RamBytes = 16u << 20;
    private const ushort IoBase = 0xC000;
    private const uint MmioBase = 0xFE000000;
    private const int DiskSectors = 2048;

    private readonly PhysicalMemory _memory = new(RamBytes);
    private readonly IoBus _io = new();
    private readonly RecordingDisk _disk;
    private bool _line;

    public VirtioBlkPciTests()
    {
        var bytes = new byte[DiskSectors * 512];
        new Random(42).NextBytes(bytes);
        _disk = new RecordingDisk(bytes);
    }

    /// <summary>Each way a driver can meet the device: legacy-only, modern-only, and a transitional device through either interface.</summary>
    public static TheoryData<VirtioPciMode, bool> Interfaces => new()
    {
        { VirtioPciMode.LegacyOnly, false },
        { VirtioPciMode.ModernOnly, true },
        { VirtioPciMode.Transitional, false },
        { VirtioPciMode.Transitional, true },
    };

    private static ulong LinuxFeatures(bool modern) => VirtioTestDriver.Features(
        VirtioFeature.BlkSegMax, VirtioFeature.BlkGeometry, VirtioFeature.BlkBlockSize, VirtioFeature.BlkFlush,
        VirtioFeature.BlkConfigWce, VirtioFeature.RingIndirectDesc) | (modern ? VirtioFeature.Bit(VirtioFeature.Version1) : 0);

    private (VirtioBlkPci Device, VirtioTestDriver Driver) Start(VirtioPciMode mode, bool modern, VirtioBlkOptions? options = null, ulong? features = null)
    {
        var device = new VirtioBlkPci(_memory, _io, _disk, mode, options);
        device.InterruptRouting = level => _line = level;
        var driver = modern ? VirtioTestDriver.ModernDriver(device, _memory, _io, MmioBase) : VirtioTestDriver.Legacy(device, _memory, _io, IoBase);
        Assert.True(driver.Initialize(features ?? LinuxFeatures(modern)));
        return (device, driver);
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Config_space_reports_capacity_seg_max_block_size_and_the_write_cache(VirtioPciMode mode, bool modern)
    {
        var (_, driver) = Start(mode, modern);
        Assert.Equal((ulong)DiskSectors, driver.ReadConfig(VirtioBlkConfig.Capacity, 4) | ((ulong)driver.ReadConfig(VirtioBlkConfig.Capacity + 4, 4) << 32));
        Assert.Equal((uint)(driver.QueueSize - 2), driver.ReadConfig(VirtioBlkConfig.SegMax, 4));
        Assert.Equal(512u, driver.ReadConfig(VirtioBlkConfig.BlockSize, 4));
        Assert.Equal(1u, driver.ReadConfig(VirtioBlkConfig.Writeback, 1));
        Assert.Equal(16u, driver.ReadConfig(VirtioBlkConfig.GeometryHeads, 1));
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Scattered_read_returns_the_disk_bytes(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern);
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitRead(sector: 100, sectors: 16, out ulong data, segments: 7));
        Assert.Equal(_disk.Bytes.AsSpan(100 * 512, 16 * 512).ToArray(), driver.ReadGuest(data, 16 * 512));
        var used = driver.PopUsed();
        Assert.Equal((16u * 512) + 1, used!.Value.Length);
        Assert.Equal(16, device.SectorsRead);
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Indirect_write_then_read_round_trips(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern);
        var payload = new byte[9 * 512];
        new Random(7).NextBytes(payload);
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitWrite(sector: 33, payload, segments: 5, indirect: true));
        Assert.Equal(payload, _disk.Bytes.AsSpan(33 * 512, payload.Length).ToArray());
        Assert.Equal(9, device.SectorsWritten);
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitRead(sector: 33, sectors: 9, out ulong data, segments: 3, indirect: true));
        Assert.Equal(payload, driver.ReadGuest(data, payload.Length));
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Several_requests_in_flight_are_all_served_by_one_notify(VirtioPciMode mode, bool modern)
    {
        var (_, driver) = Start(mode, modern);
        var slots = new List<ushort>();
        for (int i = 0; i < 5; i++)
        {
            ushort slot = (ushort)(i * 3);
            slots.Add(slot);
            driver.Submit(VirtioTestDriver.BlockRequest(slot, VirtioBlkRequest.TypeIn, (ulong)i * 8, _memory,
                VirtioTestDriver.DataBase + (ulong)i * 4096, 4096, dataWritable: true, segments: 1));
        }

        driver.Notify();
        Assert.Equal(5, driver.UsedIndex);
        Assert.All(slots, slot => Assert.Equal(VirtioBlkRequest.StatusOk, driver.StatusOf(slot)));
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(_disk.Bytes.AsSpan(i * 8 * 512, 4096).ToArray(), driver.ReadGuest(VirtioTestDriver.DataBase + (ulong)i * 4096, 4096));
        }
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Flush_reaches_the_backend(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern);
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.Run(VirtioBlkRequest.TypeFlush, 0, 0, 0, dataWritable: false));
        Assert.Equal(1, _disk.Flushes);
        Assert.Equal(1, device.Device.BackendFlushes);
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Writeback_byte_toggles_the_write_cache_at_run_time(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern);
        var sector = new byte[512];
        driver.SubmitWrite(1, sector);
        Assert.Equal(0, _disk.Flushes); // write cache on: a write completes without a flush

        driver.WriteConfig(VirtioBlkConfig.Writeback, 1, 0);
        Assert.Equal(0u, driver.ReadConfig(VirtioBlkConfig.Writeback, 1));
        Assert.False(device.Device.WriteCacheEnabled);
        driver.SubmitWrite(2, sector);
        Assert.Equal(1, _disk.Flushes); // writethrough: flushed before it completes

        driver.WriteConfig(VirtioBlkConfig.Writeback, 1, 1);
        driver.SubmitWrite(3, sector);
        Assert.Equal(1, _disk.Flushes);
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Writethrough_start_and_reset_restores_it(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern, new VirtioBlkOptions(WriteCache: false));
        Assert.Equal(0u, driver.ReadConfig(VirtioBlkConfig.Writeback, 1));
        driver.WriteConfig(VirtioBlkConfig.Writeback, 1, 1);
        Assert.True(device.Device.WriteCacheEnabled);
        driver.Initialize(LinuxFeatures(modern));
        Assert.False(device.Device.WriteCacheEnabled);
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void A_driver_without_config_wce_or_flush_gets_a_writethrough_disk(VirtioPciMode mode, bool modern)
    {
        ulong features = modern ? VirtioFeature.Bit(VirtioFeature.Version1) : 0;
        var (device, driver) = Start(mode, modern, features: features);
        Assert.False(device.Device.WriteCacheEnabled);
        driver.SubmitWrite(5, new byte[512]);
        Assert.Equal(1, _disk.Flushes);
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Host_io_error_completes_the_request_with_ioerr_and_the_device_goes_on(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern);
        _disk.Failure = new InvalidOperationException("disk on fire");
        Assert.Equal(VirtioBlkRequest.StatusIoError, driver.SubmitRead(0, 1, out _));
        Assert.Equal(VirtioBlkRequest.StatusIoError, driver.SubmitWrite(0, new byte[512]));
        Assert.Equal(VirtioBlkRequest.StatusIoError, driver.Run(VirtioBlkRequest.TypeFlush, 0, 0, 0, dataWritable: false));
        Assert.Equal(3, device.Device.HostErrors);
        Assert.Equal("disk on fire", device.Device.LastHostError);
        _disk.Failure = null;
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitRead(0, 1, out _));
        Assert.False(device.Device.Broken);
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Out_of_range_and_misaligned_requests_fail_with_ioerr(VirtioPciMode mode, bool modern)
    {
        var (_, driver) = Start(mode, modern);
        Assert.Equal(VirtioBlkRequest.StatusIoError, driver.SubmitRead(DiskSectors - 1, 2, out _));
        Assert.Equal(VirtioBlkRequest.StatusIoError, driver.SubmitRead(ulong.MaxValue, 1, out _));
        Assert.Equal(VirtioBlkRequest.StatusIoError, driver.Run(VirtioBlkRequest.TypeIn, 0, VirtioTestDriver.DataBase, 100, dataWritable: true));
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitRead(DiskSectors - 1, 1, out _));
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Get_id_returns_the_serial_and_unknown_types_are_unsupported(VirtioPciMode mode, bool modern)
    {
        var (_, driver) = Start(mode, modern, new VirtioBlkOptions(Serial: "disk-serial-42"));
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.Run(VirtioBlkRequest.TypeGetId, 0, VirtioTestDriver.DataBase, VirtioBlkRequest.IdBytes, dataWritable: true));
        var id = driver.ReadGuest(VirtioTestDriver.DataBase, VirtioBlkRequest.IdBytes);
        Assert.Equal("disk-serial-42\0\0\0\0\0\0", System.Text.Encoding.ASCII.GetString(id));
        Assert.Equal(VirtioBlkRequest.StatusUnsupported, driver.Run(11, 0, 0, 0, dataWritable: false)); // DISCARD: not offered
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Interrupt_is_level_until_the_isr_read_clears_it(VirtioPciMode mode, bool modern)
    {
        var (_, driver) = Start(mode, modern);
        Assert.False(_line);
        driver.SubmitRead(0, 1, out _);
        Assert.True(_line);
        Assert.Equal(VirtioDevice.IsrQueue, driver.ReadIsr());
        Assert.False(_line);
        Assert.Equal(0, driver.ReadIsr());
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Looped_chain_breaks_the_device_without_hanging_and_a_reset_recovers(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern);
        driver.WriteDescriptor(driver.DescriptorTable, 0, new VirtqBuffer(VirtioTestDriver.HeaderBase, 16, false), next: 1);
        driver.WriteDescriptor(driver.DescriptorTable, 1, new VirtqBuffer(VirtioTestDriver.HeaderBase + 16, 16, false), next: 0);
        driver.MakeAvailable(0);
        driver.Notify();
        Assert.True(device.Device.Broken);
        Assert.Contains("loop", device.Device.BrokenReason, StringComparison.Ordinal);
        Assert.Equal(0, driver.UsedIndex);
        if (modern)
        {
            Assert.NotEqual(0, driver.Status & VirtioStatus.DeviceNeedsReset);
            Assert.Equal(1u, driver.Common(VirtioModernTransport.ConfigGeneration, 1));
            Assert.Equal(VirtioDevice.IsrConfig, driver.ReadIsr());
        }

        // Broken: later requests are ignored until the driver resets the device.
        driver.SubmitRead(0, 1, out _);
        Assert.Equal(0, driver.UsedIndex);

        Assert.True(driver.Initialize(LinuxFeatures(modern)));
        Assert.False(device.Device.Broken);
        Assert.Equal(0, driver.Status & VirtioStatus.DeviceNeedsReset);
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitRead(0, 1, out _));
    }

    [Theory]
    [MemberData(nameof(Interfaces))]
    public void Chain_without_a_status_byte_breaks_the_device(VirtioPciMode mode, bool modern)
    {
        var (device, driver) = Start(mode, modern);
        driver.Submit([new VirtqBuffer(VirtioTestDriver.HeaderBase, 16, false)]);
        driver.Notify();
        Assert.True(device.Device.Broken);
    }

    [Fact]
    public void A_request_larger_than_the_device_buffer_moves_in_chunks()
    {
        var disk = new RecordingDisk(new byte[4 << 20]);
        new Random(3).NextBytes(disk.Bytes);
        var device = new VirtioBlkPci(_memory, _io, disk, VirtioPciMode.ModernOnly);
        var driver = VirtioTestDriver.ModernDriver(device, _memory, _io, MmioBase);
        Assert.True(driver.Initialize(LinuxFeatures(modern: true)));
        int bytes = VirtioBlkDevice.ChunkBytes * 2 + 4096;
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitRead(8, bytes / 512, out ulong data, segments: 9));
        Assert.Equal(disk.Bytes.AsSpan(8 * 512, bytes).ToArray(), driver.ReadGuest(data, bytes));

        var payload = new byte[bytes];
        new Random(4).NextBytes(payload);
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitWrite(16, payload, segments: 4));
        Assert.Equal(payload, disk.Bytes.AsSpan(16 * 512, bytes).ToArray());
        Assert.Equal(3, disk.Writes);
    }

    [Fact]
    public void Modern_feature_words_offer_version_1_and_legacy_sees_only_bits_0_to_31()
    {
        var transitional = new VirtioBlkPci(_memory, _io, _disk);
        var modern = VirtioTestDriver.ModernDriver(transitional, _memory, _io, MmioBase);
        ulong offered = modern.DeviceFeatures();
        Assert.True(VirtioFeature.Has(offered, VirtioFeature.Version1));
        Assert.True(VirtioFeature.Has(offered, VirtioFeature.BlkFlush));
        Assert.True(VirtioFeature.Has(offered, VirtioFeature.RingIndirectDesc));
        var legacy = VirtioTestDriver.Legacy(transitional, _memory, _io, IoBase);
        Assert.Equal((uint)offered, legacy.DeviceFeatures());
        Assert.False(VirtioFeature.Has(new VirtioBlkPci(_memory, new IoBus(), _disk, VirtioPciMode.LegacyOnly).Device.OfferedFeatures, VirtioFeature.Version1));
    }

    [Fact]
    public void Modern_device_refuses_features_it_did_not_offer_and_a_driver_without_version_1()
    {
        var device = new VirtioBlkPci(_memory, _io, _disk, VirtioPciMode.ModernOnly);
        var driver = VirtioTestDriver.ModernDriver(device, _memory, _io, MmioBase);
        Assert.False(driver.Initialize(LinuxFeatures(true) | VirtioFeature.Bit(VirtioFeature.BlkTopology)));
        Assert.False(driver.Initialize(LinuxFeatures(false)));
        Assert.True(driver.Initialize(LinuxFeatures(true)));
        Assert.Equal(LinuxFeatures(true), device.Device.NegotiatedFeatures);

        // Features are frozen once FEATURES_OK is set.
        driver.Common(VirtioModernTransport.DriverFeatureSelect, 4, 0);
        driver.Common(VirtioModernTransport.DriverFeature, 4, 0);
        Assert.Equal((uint)LinuxFeatures(true), driver.Common(VirtioModernTransport.DriverFeature, 4));
    }

    [Fact]
    public void Modern_queue_registers_hold_size_addresses_and_enable_and_reset_clears_them()
    {
        var device = new VirtioBlkPci(_memory, _io, _disk, VirtioPciMode.ModernOnly, new VirtioBlkOptions(QueueSize: 256));
        var driver = VirtioTestDriver.ModernDriver(device, _memory, _io, MmioBase);
        Assert.Equal(1u, driver.Common(VirtioModernTransport.NumQueues, 2));
        Assert.Equal(256u, driver.Common(VirtioModernTransport.QueueSize, 2));
        Assert.True(driver.Initialize(LinuxFeatures(true), queueSize: 128));
        Assert.Equal(128, driver.QueueSize);
        Assert.Equal(1u, driver.Common(VirtioModernTransport.QueueEnable, 2));
        Assert.Equal((uint)driver.UsedRing, driver.Common(VirtioModernTransport.QueueDevice, 4));
        Assert.Equal(0u, driver.Common(VirtioModernTransport.QueueNotifyOff, 2));
        Assert.Equal(VirtioModernTransport.NoVector, driver.Common(VirtioModernTransport.QueueMsixVector, 2));
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.SubmitRead(0, 1, out _));

        driver.Common(VirtioModernTransport.QueueSelect, 2, 1);
        Assert.Equal(0u, driver.Common(VirtioModernTransport.QueueSize, 2)); // no second queue

        driver.Status = 0;
        Assert.Equal(0, driver.Status);
        driver.Common(VirtioModernTransport.QueueSelect, 2, 0);
        Assert.Equal(0u, driver.Common(VirtioModernTransport.QueueEnable, 2));
        Assert.Equal(256u, driver.Common(VirtioModernTransport.QueueSize, 2));
        Assert.Equal(0u, driver.Common(VirtioModernTransport.QueueDesc, 4));
        Assert.Equal(0ul, device.Device.NegotiatedFeatures);
    }

    [Fact]
    public void Event_idx_suppresses_interrupts_the_driver_did_not_ask_for()
    {
        ulong features = LinuxFeatures(true) | VirtioFeature.Bit(VirtioFeature.RingEventIdx);
        var (_, driver) = Start(VirtioPciMode.ModernOnly, modern: true, features: features);
        // used_event = 5: no interrupt until the sixth completion.
        _memory.Write16((uint)(driver.AvailRing + VirtqLayout.UsedEventOffset(driver.QueueSize)), 5);
        for (int i = 0; i < 5; i++)
        {
            driver.SubmitRead(0, 1, out _);
            Assert.False(_line);
        }

        driver.SubmitRead(0, 1, out _);
        Assert.True(_line);
    }

    [Fact]
    public void Requests_allocate_nothing_once_warm()
    {
        var device = new VirtioBlkPci(_memory, _io, new Platform.MemoryDisk(new byte[4 << 20]), VirtioPciMode.ModernOnly);
        var driver = VirtioTestDriver.ModernDriver(device, _memory, _io, MmioBase);
        Assert.True(driver.Initialize(LinuxFeatures(true)));
        ushort slot = 0;
        var request = VirtioTestDriver.BlockRequest(slot, VirtioBlkRequest.TypeIn, 0, _memory, VirtioTestDriver.DataBase, 64 * 1024, dataWritable: true, segments: 16);
        driver.Submit(request, indirect: true);
        driver.Notify();

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++)
        {
            // The same indirect table again: only the available ring moves.
            driver.MakeAvailable(slot);
            driver.Notify();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(201, driver.UsedIndex);
        Assert.Equal(VirtioBlkRequest.StatusOk, driver.StatusOf(slot));
        Assert.True(allocated < 1024, $"{allocated} bytes allocated by 200 requests");
    }
}
