using System.Text;

namespace ImgTool.Inspect.Bootloaders;

/// <summary>Recognises boot code by the messages it prints: each loader's MBR and boot sector carry their own fixed
/// strings (SYSLINUX's mbr.bin "Multiple active partitions.", GRUB's boot.img "GRUB " with "Geom", Windows' MBR
/// "Invalid partition table" and its boot sectors "BOOTMGR" or "NTLDR").</summary>
internal static class BootCodeSignatures
{
    public static string? MbrLoader(ReadOnlySpan<byte> sector)
    {
        string text = Encoding.Latin1.GetString(sector[..440]);
        if (text.Contains("GRUB ", StringComparison.Ordinal) && text.Contains("Geom", StringComparison.Ordinal))
        {
            return "GRUB 2";
        }

        if (text.Contains("Multiple active partitions.", StringComparison.Ordinal) || text.Contains("Missing OS", StringComparison.Ordinal) && text.Contains("Boot error", StringComparison.Ordinal))
        {
            return "SYSLINUX";
        }

        if (text.Contains("Invalid partition table", StringComparison.Ordinal) && text.Contains("Error loading operating system", StringComparison.Ordinal))
        {
            return "Windows";
        }

        return null;
    }

    public static string? VolumeBootLoader(ReadOnlySpan<byte> sector)
    {
        string text = Encoding.Latin1.GetString(sector);
        if (text.Contains("SYSLINUX", StringComparison.Ordinal) || text.Contains("EXTLINUX", StringComparison.Ordinal))
        {
            return "SYSLINUX";
        }

        if (text.Contains("GRUB ", StringComparison.Ordinal) && text.Contains("Geom", StringComparison.Ordinal))
        {
            return "GRUB 2";
        }

        if (text.Contains("BOOTMGR", StringComparison.Ordinal))
        {
            return "Windows Boot Manager";
        }

        if (text.Contains("NTLDR", StringComparison.Ordinal))
        {
            return "Windows NT loader";
        }

        return null;
    }
}
