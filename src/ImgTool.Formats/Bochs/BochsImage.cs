using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Bochs;

/// <summary>
/// An opened Bochs growing image. The catalog maps each extent of the disk to a slot in the file (0xffffffff: not
/// allocated); a slot is the extent's sector bitmap (one bit per sector, low bit first) followed by its sectors, and a
/// sector whose bit is clear reads as zeros. QEMU's driver reports no block status, so neither do we: the whole disk
/// is data, as qemu-img map shows it.
/// </summary>
internal sealed class BochsImage : ReadOnlyImage
{
    private const uint NotAllocated = 0xffffffff;

    private readonly uint[] _catalog;
    private readonly long _dataOffset;
    private readonly long _bitmapBlockBytes;
    private readonly long _slotBytes;
    private readonly long _extentBytes;
    private readonly ChunkCache _bitmaps = new(BochsLimits.CacheBytes);

    private BochsImage(IHostFile file, BochsHeader header, uint[] catalog)
        : base(file, "bochs", (long)(header.DiskBytes / BochsLimits.SectorBytes * BochsLimits.SectorBytes))
    {
        _catalog = catalog;
        _dataOffset = (long)header.HeaderBytes + ((long)header.CatalogEntries * sizeof(uint));
        _bitmapBlockBytes = (1 + ((header.BitmapBytes - 1) / BochsLimits.SectorBytes)) * (long)BochsLimits.SectorBytes;
        _extentBytes = header.ExtentBytes;
        _slotBytes = _bitmapBlockBytes + ((1 + ((header.ExtentBytes - 1) / BochsLimits.SectorBytes)) * (long)BochsLimits.SectorBytes);
    }

    /// <summary>QEMU's bochs driver has no bdrv_get_info: qemu-img info shows no cluster size and no dirty flag.</summary>
    public override ImageDetails Details { get; } = new(ReportsDriverInfo: false);

    public override int Alignment => BochsLimits.SectorBytes;

    public static async ValueTask<BochsImage> OpenAsync(IHostFile file, CancellationToken cancellationToken)
    {
        long length = file.Length;
        byte[] headBytes = await ReadHeaderBytesAsync(file, BochsHeader.SizeBytes, "Bochs", cancellationToken).ConfigureAwait(false);
        BochsHeader header = BochsHeader.Read(headBytes, file.Path);
        if (header.CatalogEntries > BochsLimits.MaxCatalogEntries)
        {
            throw new ImageFormatException($"catalog size is too large ({header.CatalogEntries} entries, at most {BochsLimits.MaxCatalogEntries})", file.Path);
        }

        if (header.ExtentBytes < BochsLimits.MinExtentBytes || (header.ExtentBytes & (header.ExtentBytes - 1)) != 0 || header.ExtentBytes > BochsLimits.MaxExtentBytes)
        {
            throw new ImageFormatException($"extent size {header.ExtentBytes} must be a power of two from {BochsLimits.MinExtentBytes} to {BochsLimits.MaxExtentBytes}", file.Path);
        }

        uint sectorsPerExtent = header.ExtentBytes / BochsLimits.SectorBytes;
        if (header.BitmapBytes < (sectorsPerExtent + 7) / 8 || header.BitmapBytes > BochsLimits.MaxBitmapBytes)
        {
            throw new ImageFormatException($"bitmap size {header.BitmapBytes} does not fit extents of {sectorsPerExtent} sectors", file.Path);
        }

        ulong diskSectors = header.DiskBytes / BochsLimits.SectorBytes;
        if ((ulong)header.CatalogEntries < (diskSectors + sectorsPerExtent - 1) / sectorsPerExtent)
        {
            throw new ImageFormatException("catalog size is too small for this disk size", file.Path);
        }

        long catalogBytes = (long)header.CatalogEntries * sizeof(uint);
        if (header.HeaderBytes > length || catalogBytes > length - header.HeaderBytes)
        {
            throw new ImageCorruptException($"the catalog ({header.CatalogEntries} entries at offset {header.HeaderBytes}) reaches past the end of the file ({length} bytes)", "catalog", header.HeaderBytes, file.Path);
        }

        byte[] raw = new byte[catalogBytes];
        await file.ReadZeroFilledAsync(header.HeaderBytes, raw, cancellationToken).ConfigureAwait(false);
        uint[] catalog = new uint[header.CatalogEntries];
        for (int i = 0; i < catalog.Length; i++)
        {
            catalog[i] = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * sizeof(uint)));
        }

        var image = new BochsImage(file, header, catalog);
        for (int i = 0; i < catalog.Length; i++)
        {
            // The slot's bitmap must be in the file; its sectors may stop short of the slot's end (never written).
            if (catalog[i] != NotAllocated && image.SlotOffset(catalog[i]) > length - image._bitmapBlockBytes)
            {
                throw new ImageCorruptException($"catalog entry {i} points to extent slot {catalog[i]}, past the end of the file ({length} bytes)", "catalog", header.HeaderBytes + ((long)i * sizeof(uint)), file.Path);
            }
        }

        return image;
    }

    public override async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long extent = position / _extentBytes;
            long inExtent = position % _extentBytes;
            int piece = (int)Math.Min(buffer.Length - done, _extentBytes - inExtent);
            Memory<byte> part = buffer.Slice(done, piece);
            uint slot = _catalog[extent];
            if (slot == NotAllocated)
            {
                part.Span.Clear();
            }
            else
            {
                await ReadExtentAsync(slot, inExtent, part, cancellationToken).ConfigureAwait(false);
            }

            done += piece;
        }
    }

    /// <summary>No block status in QEMU's driver: everything is data, with no host offset.</summary>
    public override ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, 1);
        return ValueTask.FromResult(new BlockStatus(BlockStatusKind.Data, Math.Min(lengthBytes, SizeBytes - offsetBytes)));
    }

    private long SlotOffset(uint slot) => _dataOffset + (slot * _slotBytes);

    /// <summary>Reads within one allocated extent: runs of sectors whose bitmap bits agree are read (or zeroed) at once.</summary>
    private async ValueTask ReadExtentAsync(uint slot, long inExtent, Memory<byte> part, CancellationToken cancellationToken)
    {
        long slotOffset = SlotOffset(slot);
        byte[] bitmap = await _bitmaps.GetAsync(slotOffset, ReadBitmapAsync, cancellationToken).ConfigureAwait(false);
        for (int done = 0; done < part.Length;)
        {
            long at = inExtent + done;
            long sector = at / BochsLimits.SectorBytes;
            bool present = IsSet(bitmap, sector);
            long runEnd = (sector + 1) * BochsLimits.SectorBytes;
            while (runEnd < inExtent + part.Length && IsSet(bitmap, runEnd / BochsLimits.SectorBytes) == present)
            {
                runEnd += BochsLimits.SectorBytes;
            }

            int piece = (int)(Math.Min(runEnd, inExtent + part.Length) - at);
            Memory<byte> run = part.Slice(done, piece);
            if (present)
            {
                await HostFile.ReadZeroFilledAsync(slotOffset + _bitmapBlockBytes + at, run, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                run.Span.Clear();
            }

            done += piece;
        }
    }

    private static bool IsSet(byte[] bitmap, long sector) => (bitmap[sector >> 3] & (1 << (int)(sector & 7))) != 0;

    private async ValueTask<byte[]> ReadBitmapAsync(long slotOffset, CancellationToken cancellationToken)
    {
        byte[] bitmap = new byte[(_extentBytes / BochsLimits.SectorBytes + 7) / 8];
        await HostFile.ReadZeroFilledAsync(slotOffset, bitmap, cancellationToken).ConfigureAwait(false);
        return bitmap;
    }
}
