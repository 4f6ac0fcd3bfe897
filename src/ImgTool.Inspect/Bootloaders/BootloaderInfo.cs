namespace ImgTool.Inspect.Bootloaders;

/// <summary>A boot loader found on the disk, and the evidence for it.</summary>
/// <param name="Name">"SYSLINUX", "GRUB 2", "Windows Boot Manager", "Windows NT loader".</param>
/// <param name="Location">"MBR", "partition 1 boot sector", "partition 1: /boot/grub/grub.cfg".</param>
/// <param name="ConfigPath">The configuration file found (syslinux.cfg, grub.cfg, BCD), when one was.</param>
public sealed record BootloaderInfo(string Name, string Location, string? ConfigPath = null);
