using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Virtio;

namespace ImgTool.Machine.Tests.Virtio;

/// <summary>
/// Random reads and writes (random sectors, lengths, scatter and indirect tables, several in flight)
/// against a byte-array model of the disk: after every batch the disk equals the model and every
/// read returned the model's bytes. Seeds make each run reproducible.
/// </summary>
public sealed class VirtioBlkRandomTests
{
    private const int DiskSectors = 4096;
    private const int MaxSectors = 64;

    [Theory]
    [InlineData(1, VirtioPciMode.LegacyOnly)]
    [InlineData(2, VirtioPciMode.ModernOnly)]
    [InlineData(3, VirtioPciMode.Transitional)]
    [InlineData(4, VirtioPciMode.ModernOnly)]
    public void Random_requests_match_a_model(int seed, VirtioPciMode mode)
    {
        var random = new Random(seed);
        var memory = new PhysicalMemory(32u << 20);
        var io = new IoBus();
        var disk = new RecordingDisk(new byte[DiskSectors * 512]);
        random.NextBytes(disk.Bytes);
        byte[] model = disk.Bytes.ToArray();
        var device = new VirtioBlkPci(memory, io, disk, mode);
        bool modern = mode != VirtioPciMode.LegacyOnly;
        var driver = modern ? VirtioTestDriver.ModernDriver(device, memory, io, 0xFE000000) : VirtioTestDriver.Legacy(device, memory, io, 0xC000);
        ulong features = VirtioTestDriver.Features(VirtioFeature.BlkFlush, VirtioFeature.RingIndirectDesc, VirtioFeature.RingEventIdx) |
            (modern ? VirtioFeature.Bit(VirtioFeature.Version1) : 0);
        Assert.True(driver.Initialize(features));

        for (int batch = 0; batch < 60; batch++)
        {
            int inFlight = random.Next(1, 6);
            var reads = new List<(ushort Slot, ulong Data, byte[] Expected)>();
            for (int r = 0; r < inFlight; r++)
            {
                ushort slot = (ushort)(r * 16);
                int sector = random.Next(DiskSectors - MaxSectors);
                int bytes = random.Next(1, MaxSectors + 1) * 512;
                int segments = random.Next(1, 9);
                bool indirect = random.Next(2) == 0;
                ulong data = VirtioTestDriver.DataBase + (ulong)r * MaxSectors * 512;
                bool write = random.Next(2) == 0;
                if (write)
                {
                    var payload = new byte[bytes];
                    random.NextBytes(payload);
                    memory.WriteBlock((uint)data, payload);
                    // Requests in one batch are served in ring order, so the model applies them in order.
                    payload.CopyTo(model, sector * 512);
                }
                else
                {
                    // What the read must return: the model as of its turn in the ring.
                    reads.Add((slot, data, model.AsSpan(sector * 512, bytes).ToArray()));
                }

                var buffers = VirtioTestDriver.BlockRequest(slot, write ? VirtioBlkRequest.TypeOut : VirtioBlkRequest.TypeIn, (ulong)sector, memory, data, (uint)bytes, dataWritable: !write, segments);
                driver.SubmitAt(slot, buffers, indirect);
            }

            driver.Notify();
            foreach (var (slot, data, expected) in reads)
            {
                Assert.Equal(VirtioBlkRequest.StatusOk, driver.StatusOf(slot));
                Assert.Equal(expected, driver.ReadGuest(data, expected.Length));
            }

            Assert.Equal(model, disk.Bytes);
        }

        Assert.False(device.Device.Broken);
    }
}
