using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// The checks a header must pass before any of its fields sizes an allocation or a loop: QEMU's vdi_open checks
/// (version, sector-aligned offsets, sector size, disk size within the block map) and VirtualBox's vdiValidateHeader
/// (header size, block map and data after the header, power-of-two block size), plus the limits of <see cref="VdiLimits"/>
/// and the file's length, so a hostile header gets one clear error.
/// </summary>
internal static class VdiHeaderCheck
{
    private const string Structure = "header";

    public static void Validate(VdiHeader header, long fileLength, string? path)
    {
        if (header.Signature != VdiHeader.ExpectedSignature)
        {
            throw new ImageFormatException($"not a VDI image (signature 0x{header.Signature:x8}, expected 0x{VdiHeader.ExpectedSignature:x8})", path);
        }

        if (header.Version != VdiHeader.Version1_1)
        {
            throw new UnsupportedFeatureException($"VDI version {header.Version >> 16}.{header.Version & 0xffff} is not supported (only 1.1)", path);
        }

        if (header.HeaderBytes < VdiHeader.Header1Bytes || header.HeaderBytes > VdiHeader.SizeBytes - VdiHeader.PreHeaderBytes)
        {
            throw Corrupt($"invalid header size {header.HeaderBytes}: {VdiHeader.Header1Bytes} to {VdiHeader.SizeBytes - VdiHeader.PreHeaderBytes} bytes are expected", VdiHeader.HeaderBytesOffset, path);
        }

        switch (header.ImageType)
        {
            case VdiImageType.Dynamic or VdiImageType.Static or VdiImageType.Differencing:
                break;
            case VdiImageType.Undo:
                throw new UnsupportedFeatureException("VDI undo images (type 3) are not supported", path);
            default:
                throw Corrupt($"invalid image type {(uint)header.ImageType}", VdiHeader.ImageTypeOffset, path);
        }

        if (header.SectorBytes != VdiLimits.SectorBytes)
        {
            throw new UnsupportedFeatureException($"unsupported sector size {header.SectorBytes} (only {VdiLimits.SectorBytes})", path);
        }

        uint block = header.BlockBytes;
        if (block < VdiLimits.MinBlockBytes || block > VdiLimits.MaxBlockBytes || !uint.IsPow2(block))
        {
            throw Corrupt($"invalid block size {block}: a power of two from {VdiLimits.MinBlockBytes} bytes to {VdiLimits.MaxBlockBytes >> 20} MiB is expected", VdiHeader.BlockBytesOffset, path);
        }

        uint extra = header.BlockExtraBytes;
        if (extra != 0 && (extra > VdiLimits.MaxBlockBytes || !uint.IsPow2(extra)))
        {
            throw Corrupt($"invalid block extra data size {extra}: 0 or a power of two up to {VdiLimits.MaxBlockBytes >> 20} MiB is expected", VdiHeader.BlockExtraBytesOffset, path);
        }

        if (header.BlockCount > VdiLimits.MaxBlockMapEntries)
        {
            throw Corrupt($"the block map has {header.BlockCount} entries, more than imgtool reads ({VdiLimits.MaxBlockMapEntries})", VdiHeader.BlockCountOffset, path);
        }

        ulong size = RoundedDiskSize(header);
        if (size > (ulong)header.BlockCount * block)
        {
            throw Corrupt($"the disk size {header.DiskSizeBytes} is larger than its {header.BlockCount} blocks of {block} bytes", VdiHeader.DiskSizeOffset, path);
        }

        long mapOffset = header.BlockMapOffsetBytes;
        if (mapOffset < VdiHeader.PreHeaderBytes + header.HeaderBytes || mapOffset % VdiLimits.SectorBytes != 0)
        {
            throw Corrupt($"invalid block map offset {mapOffset}: a sector boundary after the header is expected", VdiHeader.BlockMapOffsetOffset, path);
        }

        if (mapOffset + header.BlockMapBytes > fileLength)
        {
            throw Corrupt($"the block map ({header.BlockMapBytes} bytes at {mapOffset}) lies past the end of the file ({fileLength} bytes)", VdiHeader.BlockMapOffsetOffset, path);
        }

        long dataOffset = header.DataOffsetBytes;
        if (dataOffset < mapOffset + header.BlockMapBytes || dataOffset % VdiLimits.SectorBytes != 0)
        {
            throw Corrupt($"invalid data offset {dataOffset}: a sector boundary after the block map is expected", VdiHeader.DataOffsetOffset, path);
        }

        if (header.IsDifferencing && header.UuidLinkage == Guid.Empty)
        {
            throw Corrupt("the differencing image names no parent (its linkage UUID is null)", VdiHeader.UuidLinkageOffset, path);
        }
    }

    /// <summary>The virtual size: VBoxManage convertfromraw can write sizes that are not whole sectors, which QEMU rounds up.</summary>
    public static ulong RoundedDiskSize(VdiHeader header) =>
        header.DiskSizeBytes > ulong.MaxValue - VdiLimits.SectorBytes
            ? ulong.MaxValue
            : (header.DiskSizeBytes + VdiLimits.SectorBytes - 1) / VdiLimits.SectorBytes * VdiLimits.SectorBytes;

    private static ImageCorruptException Corrupt(string message, long offset, string? path) => new(message, Structure, offset, path);
}
