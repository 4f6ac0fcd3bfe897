using ImgTool.Block.Errors;
using Microsoft.Win32.SafeHandles;

namespace ImgTool.Block.Host;

/// <summary>
/// QEMU's image locking protocol (block/file-posix.c), so imgtool and a running QEMU see each other:
/// an open holds a shared OFD lock on byte 100+bit for each permission it uses and on byte 200+bit
/// for each permission it denies to others; it conflicts when another opener denies what it uses
/// or uses what it denies. Permission bits: consistent read 0, write 1, write-unchanged 2, resize 3.
/// </summary>
internal static class ImageLock
{
    private const int PermBase = 100;
    private const int SharedBase = 200;

    private static readonly string[] PermNames = ["consistent read", "write", "write unchanged", "resize"];

    // A reader uses consistent read and denies write; a writer uses everything and denies write and resize.
    private static readonly int[] ReaderUses = [0];
    private static readonly int[] ReaderDenies = [1];
    private static readonly int[] WriterUses = [0, 1, 2, 3];
    private static readonly int[] WriterDenies = [1, 3];

    public static void Acquire(SafeFileHandle handle, string path, bool write)
    {
        int[] uses = write ? WriterUses : ReaderUses;
        int[] denies = write ? WriterDenies : ReaderDenies;
        foreach (int bit in uses)
        {
            NativeFile.SetByteLock(handle, PermBase + bit, true);
        }

        foreach (int bit in denies)
        {
            NativeFile.SetByteLock(handle, SharedBase + bit, true);
        }

        foreach (int bit in uses)
        {
            if (NativeFile.ByteLockedByOther(handle, SharedBase + bit))
            {
                throw Conflict(path, $"\"{PermNames[bit]}\"", write);
            }
        }

        foreach (int bit in denies)
        {
            if (NativeFile.ByteLockedByOther(handle, PermBase + bit))
            {
                throw Conflict(path, $"shared \"{PermNames[bit]}\"", write);
            }
        }
    }

    /// <summary>
    /// Drops every lock byte at once. Closing the handle would too, but .NET defers the close while a
    /// thread-pool I/O still holds a reference to the handle, and a reopen in that window would see
    /// our own stale lock as another process's.
    /// </summary>
    public static void Release(SafeFileHandle handle)
    {
        if (!handle.IsClosed)
        {
            NativeFile.SetByteLock(handle, PermBase, locked: false, length: SharedBase + PermNames.Length - PermBase);
        }
    }

    private static ImageLockedException Conflict(string path, string lockName, bool write) =>
        new(write
            ? $"the image is in use by another process (failed to get {lockName} lock); close it there first"
            : $"the image is in use by another process (failed to get {lockName} lock); -U gives read-only shared access",
            path);
}
