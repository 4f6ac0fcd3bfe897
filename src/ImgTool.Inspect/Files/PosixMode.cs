using System.Text;

namespace ImgTool.Inspect.Files;

/// <summary>POSIX mode bits (sys/stat.h) and their `ls -l` spelling.</summary>
public static class PosixMode
{
    public const uint TypeMask = 0xF000;
    public const uint Fifo = 0x1000;
    public const uint CharDevice = 0x2000;
    public const uint Directory = 0x4000;
    public const uint BlockDevice = 0x6000;
    public const uint Regular = 0x8000;
    public const uint Symlink = 0xA000;
    public const uint Socket = 0xC000;

    public static GuestFileKind Kind(uint mode) => (mode & TypeMask) switch
    {
        Directory => GuestFileKind.Directory,
        Regular => GuestFileKind.File,
        Symlink => GuestFileKind.Symlink,
        _ => GuestFileKind.Other,
    };

    /// <summary>"drwxr-xr-x", as ls prints it, set-id and sticky bits included.</summary>
    public static string Describe(uint mode)
    {
        var text = new StringBuilder(10);
        text.Append((mode & TypeMask) switch
        {
            Directory => 'd',
            Symlink => 'l',
            CharDevice => 'c',
            BlockDevice => 'b',
            Fifo => 'p',
            Socket => 's',
            _ => '-',
        });
        for (int shift = 6; shift >= 0; shift -= 3)
        {
            uint bits = (mode >> shift) & 7;
            bool special = (mode & (shift == 6 ? 0x800u : shift == 3 ? 0x400u : 0x200u)) != 0;
            text.Append((bits & 4) != 0 ? 'r' : '-');
            text.Append((bits & 2) != 0 ? 'w' : '-');
            char exec = (bits & 1) != 0 ? 'x' : '-';
            if (special)
            {
                exec = shift == 0 ? ((bits & 1) != 0 ? 't' : 'T') : ((bits & 1) != 0 ? 's' : 'S');
            }

            text.Append(exec);
        }

        return text.ToString();
    }
}
