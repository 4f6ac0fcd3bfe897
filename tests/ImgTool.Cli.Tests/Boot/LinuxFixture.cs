using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>The Linux fixture's disk for one bootloader, with the hashes its guest must print.</summary>
/// <param name="DiskSha256">SHA-256 of the whole image file, lowercase hex (what /dev/vda hashes to).</param>
/// <param name="DataSha256">SHA-256 of partition 2 (/dev/vda2), read from the image's own MBR.</param>
public sealed record LinuxFixtureImage(string Path, string Bootloader, string DiskSha256, string DataSha256, long DataOffsetBytes, long DataLengthBytes)
{
    public string DiskHashLine => LinuxFixture.HashLine("/dev/vda", DiskSha256);

    public string DataHashLine => LinuxFixture.HashLine("/dev/vda2", DataSha256);
}

/// <summary>
/// Builds the Linux fixture (tools/fixtures/make-linux-disk.sh) once per bootloader into a cache folder
/// keyed by the hash of the script and of tools/fixtures/linux/, so that a run (and the next runs, until
/// the script changes) builds each variant once. Shared by every test of the <see cref="LinuxFixtureCollection"/>.
/// </summary>
public sealed class LinuxFixture
{
    /// <summary>The lines tools/fixtures/linux/init prints on ttyS0.</summary>
    public const string Prefix = "ImgTool Linux fixture: ";
    public const string Marker = Prefix + "user space reached";
    public const string Done = Prefix + "done";

    public const string Syslinux = "syslinux";
    public const string Grub = "grub";

    /// <summary>The MBR partition table (a 16-byte entry per partition from byte 446) and its fields.</summary>
    private const int PartitionTableOffset = 446;
    private const int PartitionEntryBytes = 16;
    private const int PartitionStartLbaOffset = 8;
    private const int PartitionSectorCountOffset = PartitionStartLbaOffset + 4;
    private const int DataPartitionIndex = 1;
    private const int SectorBytes = 512;

    private readonly ConcurrentDictionary<string, Lazy<Task<LinuxFixtureImage>>> _images = new();

    public static string RepositoryRoot => ImgTool.TestSupport.LinuxFixtureCache.RepositoryRoot;

    public static string ScriptPath => ImgTool.TestSupport.LinuxFixtureCache.ScriptPath;

    /// <summary>"ImgTool Linux fixture: sha256 DEVICE HEX", as init prints it.</summary>
    public static string HashLine(string device, string sha256) => $"{Prefix}sha256 {device} {sha256}";

    /// <summary>The hash the guest printed for a device, or null when the line is not in the transcript.</summary>
    public static string? PrintedHash(string serial, string device) =>
        Regex.Match(serial, $"{Regex.Escape(Prefix)}sha256 {Regex.Escape(device)} ([0-9a-f]{{64}})") is { Success: true } match ? match.Groups[1].Value : null;

    public Task<LinuxFixtureImage> GetAsync(string bootloader) =>
        _images.GetOrAdd(bootloader, name => new Lazy<Task<LinuxFixtureImage>>(() => BuildAsync(name))).Value;

    /// <summary>A private copy of the fixture (tests that change it must not touch the cached one).</summary>
    public static string CopyTo(LinuxFixtureImage image, string directory)
    {
        string copy = Path.Combine(directory, $"linux-{image.Bootloader}.img");
        File.Copy(image.Path, copy, overwrite: true);
        return copy;
    }

    /// <summary>The whole-disk and data-partition hashes of a raw disk, the data partition found through its MBR.</summary>
    public static (string Disk, string Data, long DataOffset, long DataLength) Hashes(string rawPath)
    {
        using var stream = File.OpenRead(rawPath);
        byte[] mbr = new byte[SectorBytes];
        stream.ReadExactly(mbr);
        ReadOnlySpan<byte> entry = mbr.AsSpan(PartitionTableOffset + DataPartitionIndex * PartitionEntryBytes, PartitionEntryBytes);
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(entry[PartitionStartLbaOffset..]) * (long)SectorBytes;
        long length = BinaryPrimitives.ReadUInt32LittleEndian(entry[PartitionSectorCountOffset..]) * (long)SectorBytes;
        Assert.True(length > 0 && offset + length <= stream.Length, $"{rawPath}: partition 2 is missing or outside the disk");

        stream.Position = 0;
        string disk = Convert.ToHexStringLower(SHA256.HashData(stream));
        byte[] data = new byte[length];
        stream.Position = offset;
        stream.ReadExactly(data);
        return (disk, Convert.ToHexStringLower(SHA256.HashData(data)), offset, length);
    }

    private static async Task<LinuxFixtureImage> BuildAsync(string bootloader)
    {
        string folder = ImgTool.TestSupport.LinuxFixtureCache.Folder;
        Directory.CreateDirectory(folder);
        string image = Path.Combine(folder, $"linux-{bootloader}.img");
        if (!File.Exists(image))
        {
            // Built under a private name and renamed: a concurrent test run never sees half a disk.
            string partial = Path.Combine(folder, $"linux-{bootloader}.{Environment.ProcessId}.partial");
            RunResult result = await Tools.Qemu("bash", ScriptPath, partial, "--bootloader", bootloader);
            Assert.True(result.ExitCode == 0,
                "tools/fixtures/make-linux-disk.sh failed (it needs network access to Debian's archive and apt-get for its tools): " + result);
            File.Move(partial, image, overwrite: true);
        }

        var (disk, data, offset, length) = Hashes(image);
        return new LinuxFixtureImage(image, bootloader, disk, data, offset, length);
    }
}

/// <summary>
/// The Linux boot tests share one fixture and run one after another: each boot keeps a core busy for
/// seconds to minutes, and the machine has two.
/// </summary>
[CollectionDefinition(Name)]
public sealed class LinuxFixtureCollection : ICollectionFixture<LinuxFixture>
{
    public const string Name = "Linux fixture";
}
