using System.Security.Cryptography;
using System.Text.Json;

namespace ImgTool.Inspect.Tests;

/// <summary>The Linux boot fixture (tools/fixtures/make-linux-disk.sh, both boot loaders), built once into the same
/// cache folder the boot tests use, and inspected as raw and as qcow2: its MBR, its FAT boot partition, the boot loader
/// in the MBR, boot sector and files, the kernel listed, and syslinux.cfg / grub.cfg read back exactly.</summary>
public sealed class BootFixtureTests
{
    private static readonly SemaphoreSlim Build = new(1, 1);

    [Theory]
    [InlineData("syslinux", "raw")]
    [InlineData("syslinux", "qcow2")]
    [InlineData("grub", "raw")]
    [InlineData("grub", "qcow2")]
    public async Task The_fixture_is_inspected_and_its_boot_files_read(string bootloader, string format)
    {
        string raw = await FixtureAsync(bootloader);
        using var dir = new TempDir();
        string image = raw;
        if (format != "raw")
        {
            image = dir.File("fixture." + format);
            await HostTools.Run("qemu-img", "convert", "-f", "raw", "-O", format, raw, image);
        }

        JsonElement inspect = await HostTools.InspectJson(image);
        Assert.Equal("dos", inspect.GetProperty("partition-table").GetProperty("label").GetString());
        Assert.Equal("0x494d4754", inspect.GetProperty("partition-table").GetProperty("id").GetString());
        JsonElement boot = inspect.GetProperty("volumes")[0];
        Assert.True(boot.GetProperty("bootable").GetBoolean());
        JsonElement fat = boot.GetProperty("filesystem");
        Assert.Equal(("vfat", "FAT16", "IMGTOOL", "1234-ABCD"), (fat.GetProperty("type").GetString(), fat.GetProperty("version").GetString(), fat.GetProperty("label").GetString(), fat.GetProperty("uuid").GetString()));
        var loaders = inspect.GetProperty("bootloaders").EnumerateArray().Select(b => (Name: b.GetProperty("name").GetString(), Location: b.GetProperty("location").GetString(), Config: b.TryGetProperty("config", out JsonElement c) ? c.GetString() : null)).ToList();
        string expectedLoader = bootloader == "grub" ? "GRUB 2" : "SYSLINUX";
        string config = bootloader == "grub" ? "/boot/grub/grub.cfg" : "/syslinux.cfg";
        Assert.Contains((expectedLoader, "MBR", (string?)null), loaders);
        Assert.Contains(loaders, l => l.Name == expectedLoader && l.Config == config);
        Assert.All(loaders, l => Assert.Equal(expectedLoader, l.Name));

        // The kernel is listed with the size mdir gives, and the configuration reads back as the script wrote it.
        RunResult ls = await HostTools.Imgtool("ls", "-l", $"{image}:1:/");
        Assert.True(ls.ExitCode == 0, ls.ToString());
        string vmlinuz = ls.Out.Split('\n').Single(l => l.EndsWith(" vmlinuz", StringComparison.Ordinal));
        string partition = dir.File("boot.fat");
        ExtractPartition(raw, partition, inspect.GetProperty("volumes")[0]);
        RunResult mdir = await HostTools.Run("mdir", "-i", partition, "::/vmlinuz");
        string mdirSize = mdir.Out.Split('\n').Single(l => l.StartsWith("vmlinuz", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        Assert.Contains($" {mdirSize} ", vmlinuz, StringComparison.Ordinal);
        RunResult cat = await HostTools.Imgtool("cat", $"{image}:1:{config}");
        Assert.True(cat.ExitCode == 0, cat.ToString());
        Assert.Equal(File.ReadAllBytes(Path.Combine(RepositoryRoot, "tools", "fixtures", "linux", Path.GetFileName(config))), cat.Bytes);
        Assert.Equal((await HostTools.Run("mtype", "-i", partition, "::" + config)).Bytes, cat.Bytes);
        RunResult kernel = await HostTools.Imgtool("cat", $"{image}:1:/vmlinuz");
        Assert.Equal(SHA256.HashData((await HostTools.Run("mtype", "-i", partition, "::/vmlinuz")).Bytes), SHA256.HashData(kernel.Bytes));
    }

    private static void ExtractPartition(string raw, string target, JsonElement volume)
    {
        using var input = File.OpenRead(raw);
        using var output = File.Create(target);
        input.Position = volume.GetProperty("offset-bytes").GetInt64();
        byte[] data = new byte[volume.GetProperty("size-bytes").GetInt64()];
        input.ReadExactly(data);
        output.Write(data);
    }

    /// <summary>The fixture from the boot tests' cache (tests/Shared/LinuxFixtureCache.cs), built there when missing.</summary>
    private static async Task<string> FixtureAsync(string bootloader)
    {
        string folder = LinuxFixtureCache.Folder;
        string image = Path.Combine(folder, $"linux-{bootloader}.img");
        await Build.WaitAsync();
        try
        {
            if (!File.Exists(image))
            {
                Directory.CreateDirectory(folder);
                string partial = Path.Combine(folder, $"linux-{bootloader}.{Environment.ProcessId}.partial");
                await HostTools.Run("bash", LinuxFixtureCache.ScriptPath, partial, "--bootloader", bootloader);
                File.Move(partial, image, overwrite: true);
            }
        }
        finally
        {
            Build.Release();
        }

        return image;
    }

    private static string RepositoryRoot => LinuxFixtureCache.RepositoryRoot;
}
