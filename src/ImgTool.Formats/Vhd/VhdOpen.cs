using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vhd;

/// <summary>What opening a VHD found, handed to the image.</summary>
internal sealed record VhdOpenState(
    IHostFile File,
    VhdFooter Footer,
    byte[] FooterBytes,
    bool FooterAtHead,
    VhdDynamicHeader? Header,
    uint[] Bat,
    HashSet<long> InvalidBlocks,
    long SizeBytes,
    long NextFreeBytes,
    string? ParentName,
    IImage? Parent);

internal sealed partial class VhdImage
{
    /// <summary>
    /// Reads the footer: the copy at offset 0 first (dynamic and differencing disks), else the one in the last 512 bytes
    /// (every VHD; the only one of a fixed disk). A copy with a bad checksum is passed over for the other (the spec's
    /// reason for keeping two); when both are bad the image is refused.
    /// </summary>
    public static async ValueTask<(VhdFooter Footer, byte[] Bytes, bool AtHead)> ReadFooterAsync(IHostFile file, CancellationToken cancellationToken)
    {
        long length = file.Length;
        if (length < VhdFooter.SizeBytes)
        {
            throw new ImageFormatException("not a VHD image: the file is shorter than a footer", file.Path);
        }

        byte[] head = new byte[VhdFooter.SizeBytes];
        await file.ReadZeroFilledAsync(0, head, cancellationToken).ConfigureAwait(false);
        byte[] tail = new byte[VhdFooter.SizeBytes];
        await file.ReadZeroFilledAsync(length - VhdFooter.SizeBytes, tail, cancellationToken).ConfigureAwait(false);

        // A copy at the head describes a dynamic disk; a head that reads like a fixed disk's footer is disk data.
        bool headUsable = VhdFooter.HasCookie(head) && VhdFooter.ChecksumMatches(head)
            && BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(VhdFooter.DiskTypeOffset)) != (uint)VhdDiskType.Fixed;
        bool tailUsable = VhdFooter.HasCookie(tail) && VhdFooter.ChecksumMatches(tail);
        if (headUsable && length >= VhdFooter.SizeBytes + VhdDynamicHeader.SizeBytes)
        {
            return (VhdFooter.Read(head, file.Path), head, true);
        }

        if (tailUsable)
        {
            return (VhdFooter.Read(tail, file.Path), tail, false);
        }

        if (VhdFooter.HasCookie(head) || VhdFooter.HasCookie(tail))
        {
            throw new ImageCorruptException("the VHD footer checksum is wrong (in every copy)", "footer", VhdFooter.HasCookie(head) ? 0 : length - VhdFooter.SizeBytes, file.Path);
        }

        throw new ImageFormatException("not a VHD image: no 'conectix' footer at the start or the end", file.Path);
    }

    public static async ValueTask<VhdImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken)
    {
        (VhdFooter footer, byte[] footerBytes, bool atHead) = await ReadFooterAsync(file, cancellationToken).ConfigureAwait(false);
        long length = file.Length;
        long size = VhdGeometry.VirtualSize(footer);
        if (size > VhdLimits.MaxSizeBytes)
        {
            throw new ImageFormatException($"the VHD is larger than 2040 GiB ({size} bytes), the format's limit", file.Path);
        }

        if (footer.DiskType == VhdDiskType.Fixed)
        {
            if (size > length - VhdFooter.SizeBytes)
            {
                throw new ImageCorruptException(
                    $"the fixed VHD is truncated: its footer says {size} bytes but the file holds {length - VhdFooter.SizeBytes}", "footer", length - VhdFooter.SizeBytes, file.Path);
            }

            return new VhdImage(new VhdOpenState(file, footer, footerBytes, atHead, null, [], [], size, length - VhdFooter.SizeBytes, null, null));
        }

        VhdDynamicHeader header = await ReadHeaderAsync(file, footer, cancellationToken).ConfigureAwait(false);
        long blockBytes = header.BlockSize;
        long entries = header.MaxTableEntries;
        if (entries < (size + blockBytes - 1) / blockBytes)
        {
            throw new ImageCorruptException(
                $"the block allocation table has {entries} entries, too few for {size} bytes", "dynamic disk header", (long)footer.DataOffset, file.Path);
        }

        if (entries > VhdLimits.MaxSizeBytes / blockBytes + 1 || entries > VhdLimits.MaxBatEntries)
        {
            throw new ImageCorruptException($"the block allocation table has {entries} entries, more than a 2040 GiB disk needs or than imgtool reads ({VhdLimits.MaxBatEntries})", "dynamic disk header", (long)footer.DataOffset, file.Path);
        }

        long tableOffset = (long)Math.Min(header.TableOffset, long.MaxValue);
        long tableBytes = entries * 4;
        if (tableOffset < VhdFooter.SizeBytes || tableOffset > length - tableBytes)
        {
            throw new ImageCorruptException($"the block allocation table at {header.TableOffset} lies outside the file", "BAT", tableOffset, file.Path);
        }

        byte[] raw = new byte[tableBytes];
        await file.ReadZeroFilledAsync(tableOffset, raw, cancellationToken).ConfigureAwait(false);
        uint[] bat = new uint[entries];
        int bitmapBytes = BitmapBytesFor((int)blockBytes);
        long nextFree = RoundUpSector(tableOffset + tableBytes);
        var invalid = new HashSet<long>();
        for (long i = 0; i < entries; i++)
        {
            uint entry = BinaryPrimitives.ReadUInt32BigEndian(raw.AsSpan((int)(i * 4)));
            bat[i] = entry;
            if (entry == Unallocated)
            {
                continue;
            }

            long blockEnd = ((long)entry * VhdLimits.SectorBytes) + bitmapBytes + blockBytes;
            if ((long)entry * VhdLimits.SectorBytes < VhdFooter.SizeBytes || blockEnd > length)
            {
                invalid.Add(i);
                continue;
            }

            nextFree = Math.Max(nextFree, blockEnd);
        }

        if (invalid.Count > 0 && !file.IsReadOnly)
        {
            long first = invalid.Min();
            throw new ImageCorruptException(
                $"BAT entry {first} points outside the file ({invalid.Count} such entries); the image cannot be opened for writing (run 'check')", "BAT", tableOffset + (first * 4), file.Path);
        }

        // New blocks go where the footer copy at the end now is (qemu: free_data_block_offset).
        nextFree = Math.Max(nextFree, RoundUpSector(length - VhdFooter.SizeBytes));
        string? parentName = null;
        IImage? parent = null;
        if (footer.DiskType == VhdDiskType.Differencing)
        {
            (parentName, parent) = await OpenParentAsync(file, header, context, cancellationToken).ConfigureAwait(false);
        }

        return new VhdImage(new VhdOpenState(file, footer, footerBytes, atHead, header, bat, invalid, size, nextFree, parentName, parent));
    }

    private static long RoundUpSector(long value) => (value + VhdLimits.SectorBytes - 1) / VhdLimits.SectorBytes * VhdLimits.SectorBytes;

    private static async ValueTask<VhdDynamicHeader> ReadHeaderAsync(IHostFile file, VhdFooter footer, CancellationToken cancellationToken)
    {
        ulong headerOffset = footer.DataOffset;
        if (headerOffset < VhdFooter.SizeBytes || file.Length < VhdDynamicHeader.SizeBytes || headerOffset > (ulong)(file.Length - VhdDynamicHeader.SizeBytes))
        {
            throw new ImageCorruptException($"the dynamic disk header offset {headerOffset} lies outside the file", "footer", VhdFooter.DataOffsetOffset, file.Path);
        }

        byte[] bytes = new byte[VhdDynamicHeader.SizeBytes];
        await file.ReadZeroFilledAsync((long)headerOffset, bytes, cancellationToken).ConfigureAwait(false);
        // A wrong header checksum is reported by check but does not stop the open: qemu does not verify it either, and
        // every field used is range-checked below.
        VhdDynamicHeader header = VhdDynamicHeader.Read(bytes, file.Path);

        uint blockSize = header.BlockSize;
        if (blockSize < VhdLimits.SectorBytes || blockSize > VhdLimits.MaxBlockBytes || !uint.IsPow2(blockSize))
        {
            throw new ImageCorruptException($"invalid block size {blockSize}: a power of two from 512 bytes to 256 MiB is expected", "dynamic disk header", (long)headerOffset, file.Path);
        }

        return header;
    }

    /// <summary>
    /// Finds the parent of a differencing disk: the relative locator (W2ru) first, then the absolute one (W2ku), then the
    /// parent name of the header, each taken only when the file exists; and checks that the file found is the parent
    /// the child was made from (its unique id, and its time stamp: the parent footer's or, as Virtual PC records it,
    /// the file's modification time).
    /// </summary>
    private static async ValueTask<(string? Name, IImage? Parent)> OpenParentAsync(IHostFile file, VhdDynamicHeader header, ImageOpenContext context, CancellationToken cancellationToken)
    {
        var candidates = new List<string>();
        foreach (uint platform in new[] { VhdParentLocator.W2ru, VhdParentLocator.W2ku })
        {
            foreach (VhdParentLocator locator in header.ParentLocators.Where(l => l.PlatformCode == platform))
            {
                if (await ReadLocatorAsync(file, locator, cancellationToken).ConfigureAwait(false) is { Length: > 0 } path)
                {
                    candidates.Add(path);
                }
            }
        }

        if (header.ParentUnicodeName.Length > 0)
        {
            candidates.Add(WindowsToHostPath(header.ParentUnicodeName));
        }

        if (candidates.Count == 0)
        {
            throw new ImageCorruptException("the differencing VHD names no parent (no locator and no parent name)", "dynamic disk header", 0, file.Path);
        }

        string chosen = candidates.FirstOrDefault(c => File.Exists(ImageOpener.ResolveBackingPath(file.Path, c))) ?? candidates[0];
        if (context.OpenBackingAsync is not { } open)
        {
            return (chosen, null);
        }

        string resolved = ImageOpener.ResolveBackingPath(file.Path, chosen);
        if (!File.Exists(resolved))
        {
            throw new BackingFileException($"the parent of this differencing VHD was not found (tried {string.Join(", ", candidates.Distinct())})", file.Path);
        }

        IImage parent = await open(chosen, "vpc", cancellationToken).ConfigureAwait(false);
        try
        {
            if (parent is not VhdImage vhd)
            {
                throw new BackingFileException($"the parent '{chosen}' is not a VHD", file.Path);
            }

            if (vhd.Footer.UniqueId != header.ParentUniqueId)
            {
                throw new BackingFileException(
                    $"the parent '{chosen}' is not the disk this one was made from: its id is {vhd.Footer.UniqueId}, expected {header.ParentUniqueId}", file.Path);
            }

            long modified = (long)(File.GetLastWriteTimeUtc(resolved) - DateTime.UnixEpoch).TotalSeconds - VhdFooter.EpochUnixSeconds;
            if (vhd.Footer.TimeStamp != header.ParentTimeStamp && modified != header.ParentTimeStamp)
            {
                throw new BackingFileException(
                    $"the parent '{chosen}' has changed since this differencing disk was made (time stamp {vhd.Footer.TimeStamp}, expected {header.ParentTimeStamp})", file.Path);
            }

            return (chosen, parent);
        }
        catch
        {
            await parent.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async ValueTask<string?> ReadLocatorAsync(IHostFile file, VhdParentLocator locator, CancellationToken cancellationToken)
    {
        if (locator.DataLength is 0 or > VhdLimits.MaxLocatorBytes || locator.DataLength > file.Length || locator.DataOffset > (ulong)(file.Length - locator.DataLength))
        {
            return null; // an unusable locator is skipped; the others may still find the parent
        }

        byte[] data = new byte[locator.DataLength];
        await file.ReadZeroFilledAsync((long)locator.DataOffset, data, cancellationToken).ConfigureAwait(false);
        string text = Encoding.Unicode.GetString(data).TrimEnd('\0');
        return WindowsToHostPath(text);
    }

    /// <summary>Locators hold Windows paths: ".\base.vhd" becomes "base.vhd", separators become '/'.</summary>
    internal static string WindowsToHostPath(string path)
    {
        string host = path.Replace('\\', '/');
        while (host.StartsWith("./", StringComparison.Ordinal))
        {
            host = host[2..];
        }

        return host;
    }
}
