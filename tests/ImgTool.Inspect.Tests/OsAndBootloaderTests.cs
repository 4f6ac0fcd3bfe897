using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Filesystems;
using ImgTool.Inspect.OsRelease;

namespace ImgTool.Inspect.Tests;

/// <summary>The operating system hint (os-release, debian_version, redhat-release), boot loaders found by their files
/// (GRUB 2, the Windows Boot Manager on an EFI system partition) and by their boot code, and the LVM2 probe.</summary>
public sealed class OsAndBootloaderTests
{
    [Fact]
    public async Task Os_release_through_its_usual_symlink_names_the_system()
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        Directory.CreateDirectory(Path.Combine(root, "usr", "lib"));
        Directory.CreateDirectory(Path.Combine(root, "boot", "grub", "i386-pc"));
        File.WriteAllText(Path.Combine(root, "usr", "lib", "os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n");
        File.CreateSymbolicLink(Path.Combine(root, "etc", "os-release"), "../usr/lib/os-release");
        File.WriteAllText(Path.Combine(root, "boot", "grub", "grub.cfg"), "menuentry x {}\n");
        File.WriteAllBytes(Path.Combine(root, "boot", "grub", "i386-pc", "normal.mod"), [1, 2, 3]);
        string disk = await DiskWithExt4(dir, root);
        JsonElement inspect = await HostTools.InspectJson(disk);
        JsonElement os = inspect.GetProperty("operating-systems").EnumerateArray().Single();
        Assert.Equal(1, os.GetProperty("partition").GetInt32());
        Assert.Equal("/etc/os-release", os.GetProperty("source").GetString());
        Assert.Equal("debian", os.GetProperty("id").GetString());
        Assert.Equal("12", os.GetProperty("version-id").GetString());
        Assert.Equal("Debian GNU/Linux 12 (bookworm)", os.GetProperty("pretty-name").GetString());
        JsonElement loader = inspect.GetProperty("bootloaders").EnumerateArray().Single();
        Assert.Equal("GRUB 2", loader.GetProperty("name").GetString());
        Assert.Equal("/boot/grub/grub.cfg", loader.GetProperty("config").GetString());
        RunResult human = await HostTools.Imgtool("inspect", disk);
        Assert.Contains("operating system: Debian GNU/Linux 12 (bookworm) (partition 1, /etc/os-release)", human.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("etc/debian_version", "11.7\n", "Debian GNU/Linux 11.7")]
    [InlineData("etc/redhat-release", "Rocky Linux release 9.2 (Blue Onyx)\n", "Rocky Linux release 9.2 (Blue Onyx)")]
    public async Task Older_release_files_are_read_when_os_release_is_missing(string file, string content, string pretty)
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, file), content);
        JsonElement inspect = await HostTools.InspectJson(await DiskWithExt4(dir, root));
        JsonElement os = inspect.GetProperty("operating-systems").EnumerateArray().Single();
        Assert.Equal("/" + file, os.GetProperty("source").GetString());
        Assert.Equal(pretty, os.GetProperty("pretty-name").GetString());
    }

    [Fact]
    public async Task Windows_boot_manager_on_an_efi_system_partition_is_found()
    {
        using var dir = new TempDir();
        string disk = dir.File("esp.img");
        string esp = dir.File("esp.fat");
        await HostTools.Run("truncate", "-s", "40M", disk);
        await HostTools.Run("sgdisk", "-n1:2048:+32M", "-t1:ef00", disk);
        await HostTools.Run("truncate", "-s", "32M", esp);
        await HostTools.Run("mkfs.vfat", "-F", "16", esp);
        File.WriteAllBytes(dir.File("bootmgfw.efi"), [0x4D, 0x5A]);
        File.WriteAllBytes(dir.File("BCD"), [0]);
        await HostTools.Run("mmd", "-i", esp, "::/EFI", "::/EFI/Microsoft", "::/EFI/Microsoft/Boot");
        await HostTools.Run("mcopy", "-i", esp, dir.File("bootmgfw.efi"), dir.File("BCD"), "::/EFI/Microsoft/Boot/");
        HostTools.CopyInto(esp, disk, 2048 * 512);
        JsonElement loader = (await HostTools.InspectJson(disk)).GetProperty("bootloaders").EnumerateArray().Single();
        Assert.Equal("Windows Boot Manager", loader.GetProperty("name").GetString());
        Assert.Equal("partition 1: /EFI/Microsoft/Boot/bootmgfw.efi", loader.GetProperty("location").GetString());
        Assert.Equal("/EFI/Microsoft/Boot/BCD", loader.GetProperty("config").GetString());
    }

    [Theory]
    [InlineData("Invalid partition table\0Error loading operating system\0Missing operating system", "Windows")]
    [InlineData("GRUB \0Geom\0Hard Disk\0Read\0 Error", "GRUB 2")]
    [InlineData("Missing operating system.\r\nMultiple active partitions.\r\n", "SYSLINUX")]
    [InlineData("nothing to see here", null)]
    public void Mbr_boot_code_is_recognised_by_its_messages(string messages, string? loader)
    {
        byte[] sector = new byte[512];
        Encoding.Latin1.GetBytes(messages).CopyTo(sector, 0x160);
        Assert.Equal(loader, Bootloaders.BootCodeSignatures.MbrLoader(sector));
    }

    [Fact]
    public void Os_release_values_are_unquoted_and_comments_skipped()
    {
        Dictionary<string, string> fields = OsReleaseReader.Parse("# comment\nNAME='Fedora Linux'\nID=fedora\nPRETTY_NAME=\"Say \\\"hi\\\"\"\nBROKEN\n");
        Assert.Equal("Fedora Linux", fields["NAME"]);
        Assert.Equal("fedora", fields["ID"]);
        Assert.Equal("Say \"hi\"", fields["PRETTY_NAME"]);
        Assert.False(fields.ContainsKey("BROKEN"));
    }

    /// <summary>pvcreate needs a block device, so the PV is laid out here as lib/format_text/layout.h describes it:
    /// the label in sector 1, the PV header, one data area, one metadata area whose text starts with the VG name.</summary>
    [Fact]
    public async Task Lvm2_physical_volume_gives_its_uuid_and_volume_group()
    {
        byte[] disk = new byte[4 << 20];
        Span<byte> label = disk.AsSpan(512, 512);
        "LABELONE"u8.CopyTo(label);
        BinaryPrimitives.WriteUInt64LittleEndian(label[8..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(label[20..], 32);
        "LVM2 001"u8.CopyTo(label[24..]);
        Span<byte> pv = label[32..];
        "abcdef0123456789ABCDEFghijklmnop"u8.CopyTo(pv);
        BinaryPrimitives.WriteInt64LittleEndian(pv[32..], disk.Length);
        BinaryPrimitives.WriteInt64LittleEndian(pv[40..], 1 << 20);        // data area at 1 MiB
        BinaryPrimitives.WriteInt64LittleEndian(pv[72..], 4096);           // (after the zero entry) metadata area at 4 KiB
        BinaryPrimitives.WriteInt64LittleEndian(pv[80..], 1 << 20);
        Span<byte> mda = disk.AsSpan(4096, 512);
        " LVM2 x[5A%r0N*>"u8.CopyTo(mda[4..]);
        BinaryPrimitives.WriteInt64LittleEndian(mda[40..], 512);
        BinaryPrimitives.WriteInt64LittleEndian(mda[48..], 64);
        "vg_data {\nid = \"x\"\n}\n"u8.CopyTo(disk.AsSpan(4096 + 512));
        FilesystemInfo? found = await FilesystemProber.ProbeAsync(new DiskView(new MemoryDevice(disk), "pv.img"), CancellationToken.None);
        Assert.NotNull(found);
        Assert.Equal(("LVM2_member", "raid", "LVM2 001"), (found.Type, found.Usage, found.Version));
        Assert.Equal("abcdef-0123-4567-89AB-CDEF-ghij-klmnop", found.Uuid);
        Assert.Equal(new KeyValuePair<string, string>("vg-name", "vg_data"), Assert.Single(found.Details!));
    }

    private static async Task<string> DiskWithExt4(TempDir dir, string root)
    {
        string fs = dir.File("root.ext4");
        string disk = dir.File("disk.img");
        await HostTools.Run("truncate", "-s", "32M", fs);
        await HostTools.Run("mke2fs", "-q", "-t", "ext4", "-d", root, fs);
        await HostTools.Run("truncate", "-s", "40M", disk);
        await HostTools.Shell($"printf 'label: dos\\n2048,,83,*\\n' | sfdisk -q '{disk}'");
        HostTools.CopyInto(fs, disk, 2048 * 512);
        return disk;
    }
}
