using ImgTool.Inspect.Files;

namespace ImgTool.Inspect.Bootloaders;

/// <summary>The files each boot loader installs on its boot partition, and its configuration file.</summary>
internal static class BootFiles
{
    /// <summary>(loader, a file that proves it, the configuration files it reads), in the order loaders look for them.</summary>
    private static readonly (string Loader, string[] Markers, string[] Configs)[] Known =
    [
        ("SYSLINUX", ["/ldlinux.sys", "/syslinux/ldlinux.sys", "/boot/syslinux/ldlinux.sys", "/ldlinux.c32", "/boot/extlinux/ldlinux.sys", "/extlinux/ldlinux.sys"],
            ["/syslinux.cfg", "/syslinux/syslinux.cfg", "/boot/syslinux/syslinux.cfg", "/boot/syslinux.cfg", "/extlinux.conf", "/boot/extlinux/extlinux.conf", "/extlinux/extlinux.conf"]),
        ("GRUB 2", ["/boot/grub/i386-pc/normal.mod", "/grub/i386-pc/normal.mod", "/boot/grub/grub.cfg", "/grub/grub.cfg", "/EFI/BOOT/grubx64.efi", "/EFI/debian/grubx64.efi"],
            ["/boot/grub/grub.cfg", "/grub/grub.cfg", "/EFI/debian/grub.cfg", "/EFI/BOOT/grub.cfg"]),
        ("Windows Boot Manager", ["/bootmgr", "/EFI/Microsoft/Boot/bootmgfw.efi"], ["/Boot/BCD", "/EFI/Microsoft/Boot/BCD"]),
    ];

    public static async ValueTask<List<(string Loader, string Marker, string? Config)>> FindAsync(IGuestFileSystem fs, CancellationToken cancellationToken)
    {
        var found = new List<(string, string, string?)>();
        foreach (var (loader, markers, configs) in Known)
        {
            string? marker = await FirstExistingAsync(fs, markers, cancellationToken).ConfigureAwait(false);
            if (marker is null)
            {
                continue;
            }

            found.Add((loader, marker, await FirstExistingAsync(fs, configs, cancellationToken).ConfigureAwait(false)));
        }

        return found;
    }

    private static async ValueTask<string?> FirstExistingAsync(IGuestFileSystem fs, string[] paths, CancellationToken cancellationToken)
    {
        foreach (string path in paths)
        {
            try
            {
                GuestEntry entry = await GuestPath.ResolveAsync(fs, path, true, cancellationToken).ConfigureAwait(false);
                if (entry.Kind == GuestFileKind.File)
                {
                    return path;
                }
            }
            catch (Block.Errors.ImgToolException)
            {
                // Absent, or unreadable: not evidence.
            }
        }

        return null;
    }
}
