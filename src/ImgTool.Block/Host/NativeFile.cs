using System.Runtime.InteropServices;
using System.Text;
using ImgTool.Block.Errors;
using Tmds.Linux;
using Microsoft.Win32.SafeHandles;

namespace ImgTool.Block.Host;

/// <summary>The Linux calls the host file layer needs, each turning errno into a typed error.</summary>
internal static unsafe class NativeFile
{
    // Not in Tmds.LibC's constant set; values from <linux/fs.h> and <linux/falloc.h>.
    private const int SeekData = 3;
    private const int SeekHole = 4;
    private const int FallocFlZeroRange = 0x10;
    private const int EnxIo = 6;

    public static SafeFileHandle Open(string path, int flags, int mode = 0b110_100_100)
    {
        byte[] name = Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        fixed (byte* p = name)
        {
            do
            {
                fd = LibC.open(p, flags | LibC.O_CLOEXEC, (mode_t)(uint)mode);
            }
            while (fd < 0 && LibC.errno == LibC.EINTR);
        }

        if (fd < 0)
        {
            string reason = LastError();
            throw new HostIOException($"Could not open: {reason}", path) { Reason = reason };
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        stat st;
        if (LibC.fstat(fd, &st) != 0)
        {
            string error = LastError();
            handle.Dispose();
            throw new HostIOException($"Could not open: {error}", path) { Reason = error };
        }

        if ((st.st_mode & LibC.S_IFMT) == LibC.S_IFDIR)
        {
            handle.Dispose();
            throw new HostIOException("Could not open: Is a directory", path) { Reason = "Is a directory" };
        }

        return handle;
    }

    public static string LastError() => Marshal.GetPInvokeErrorMessage(LibC.errno);

    public static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    public static long AllocatedBytes(SafeFileHandle handle)
    {
        stat st;
        return LibC.fstat(Fd(handle), &st) == 0 ? (long)st.st_blocks * 512 : 0;
    }

    /// <summary>SEEK_DATA / SEEK_HOLE: the extent at offset, clipped to maxLength. Beyond EOF is a hole.</summary>
    public static HostExtent Extent(SafeFileHandle handle, long offset, long maxLength, long fileLength)
    {
        if (offset >= fileLength)
        {
            return new HostExtent(false, maxLength);
        }

        int fd = Fd(handle);
        long data = LibC.lseek(fd, offset, SeekData);
        if (data < 0)
        {
            if (LibC.errno == EnxIo)
            {
                return new HostExtent(false, maxLength); // no data after offset
            }

            return new HostExtent(true, maxLength); // the file system cannot tell: call it data, as QEMU does
        }

        if (data > offset)
        {
            return new HostExtent(false, Math.Min(maxLength, data - offset));
        }

        long hole = LibC.lseek(fd, offset, SeekHole);
        if (hole < 0)
        {
            return new HostExtent(true, maxLength);
        }

        // SEEK_HOLE returns EOF as the implicit hole; clip there so callers see the tail exactly.
        return new HostExtent(true, Math.Max(1, Math.Min(maxLength, hole - offset)));
    }

    /// <summary>fallocate; returns false when the file system does not support the mode.</summary>
    public static bool Fallocate(SafeFileHandle handle, string path, int mode, long offset, long length)
    {
        int r;
        do
        {
            r = LibC.fallocate(Fd(handle), mode, offset, length);
        }
        while (r < 0 && LibC.errno == LibC.EINTR);

        if (r == 0)
        {
            return true;
        }

        int errno = LibC.errno;
        if (errno == LibC.EOPNOTSUPP || errno == LibC.ENOSYS)
        {
            return false;
        }

        throw new HostIOException($"fallocate failed: {Marshal.GetPInvokeErrorMessage(errno)}", path);
    }

    public static bool PunchHole(SafeFileHandle handle, string path, long offset, long length) =>
        Fallocate(handle, path, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length);

    public static bool ZeroRange(SafeFileHandle handle, string path, long offset, long length) =>
        Fallocate(handle, path, FallocFlZeroRange, offset, length);

    public static void DataSync(SafeFileHandle handle, string path)
    {
        if (LibC.fdatasync(Fd(handle)) != 0)
        {
            throw new HostIOException($"fdatasync failed: {LastError()}", path);
        }
    }

    /// <summary>Takes (F_RDLCK) or releases (F_UNLCK) an OFD lock on a byte range.</summary>
    public static bool SetByteLock(SafeFileHandle handle, long offset, bool locked, long length = 1)
    {
        flock fl = default;
        fl.l_type = (short)(locked ? LibC.F_RDLCK : LibC.F_UNLCK);
        fl.l_whence = (short)LibC.SEEK_SET;
        fl.l_start = offset;
        fl.l_len = length;
        return LibC.fcntl(Fd(handle), LibC.F_OFD_SETLK, &fl) == 0;
    }

    /// <summary>True when another open file description holds a lock on that byte.</summary>
    public static bool ByteLockedByOther(SafeFileHandle handle, long offset)
    {
        flock fl = default;
        fl.l_type = (short)LibC.F_WRLCK;
        fl.l_whence = (short)LibC.SEEK_SET;
        fl.l_start = offset;
        fl.l_len = 1;
        if (LibC.fcntl(Fd(handle), LibC.F_OFD_GETLK, &fl) != 0)
        {
            return false; // the file system has no locks (some network file systems): do not block the user
        }

        return fl.l_type != LibC.F_UNLCK;
    }

    public static bool IsTerminal(int fd) => LibC.isatty(fd) == 1;
}
