using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vhdx;

/// <summary>
/// Writes a new VHDX file with QEMU's layout: identifier, two headers, two region tables, the log at
/// 1 MiB, then the BAT and a 1 MiB metadata region; payload blocks are appended after them.
/// </summary>
internal static class VhdxCreate
{
    public const long DefaultLogBytes = VhdxLimits.MiB;
    private const int LogicalSectorBytes = 512;
    private const int PhysicalSectorBytes = 512; // as QEMU writes; Hyper-V writes 4096, both read fine
    private const long MetadataRegionBytes = VhdxLimits.MiB;

    public static async ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken)
    {
        string path = file.Path;
        var options = request.Options;
        long size = RoundUp(request.SizeBytes, LogicalSectorBytes); // QEMU rounds the size up to 512 silently
        if (size > VhdxLimits.MaxVirtualSizeBytes)
        {
            throw new InvalidOptionException("image size too large; max of 64TB", path);
        }

        if (size == 0)
        {
            throw new InvalidOptionException("image size must be greater than zero for VHDX", path);
        }

        long logBytes = RoundUp(options.GetSize("log_size") ?? DefaultLogBytes, VhdxLimits.MiB);
        if (logBytes < VhdxLimits.MiB || logBytes > uint.MaxValue - (VhdxLimits.MiB - 1))
        {
            throw new InvalidOptionException("log size must be at least 1 MB and smaller than 4 GB", path);
        }

        long blockBytes = RoundUp(options.GetSize("block_size") ?? 0, VhdxLimits.MiB);
        if (blockBytes == 0)
        {
            blockBytes = size > 32 * VhdxLimits.TiB ? 64 * VhdxLimits.MiB
                : size > 100 * VhdxLimits.GiB ? 32 * VhdxLimits.MiB
                : size > VhdxLimits.GiB ? 16 * VhdxLimits.MiB
                : 8 * VhdxLimits.MiB;
        }

        blockBytes = Math.Min(blockBytes, VhdxLimits.MaxBlockSizeBytes);
        if ((blockBytes & (blockBytes - 1)) != 0)
        {
            throw new InvalidOptionException("block size must be a power of two", path);
        }

        string subformat = options.GetString("subformat") ?? "dynamic";
        if (subformat is not ("dynamic" or "fixed"))
        {
            throw new InvalidOptionException($"invalid subformat '{subformat}': use dynamic or fixed", path);
        }

        bool zeroBlocks = options.GetBool("block_state_zero") ?? true;
        bool hasParent = request.BackingFile is not null;
        if (hasParent && subformat == "fixed")
        {
            throw new InvalidOptionException("a differencing VHDX (backing file) must be dynamic", path);
        }

        VhdxParentLocator? locator = null;
        if (request.BackingFile is { } backing)
        {
            if (request.BackingFormat is { } fmt && fmt != "vhdx")
            {
                throw new UnsupportedFeatureException($"the parent of a differencing VHDX must be a VHDX image, not {fmt}", path);
            }

            Guid linkage = await ReadParentDataWriteGuidAsync(ImageOpener.ResolveBackingPath(path, backing), path, cancellationToken).ConfigureAwait(false);
            var entries = new List<KeyValuePair<string, string>> { new("parent_linkage", linkage.ToString("B")) };
            entries.Add(Path.IsPathRooted(backing)
                ? new("absolute_win32_path", backing)
                : new("relative_path", backing.Replace('/', '\\')));
            locator = new VhdxParentLocator(VhdxParentLocator.VhdxParentType, entries);
        }

        var geometry = new VhdxBatGeometry(size, blockBytes, LogicalSectorBytes, hasParent);
        long batOffset = RoundUp(VhdxLayout.HeaderSectionEnd + logBytes, VhdxLimits.MiB);
        long batLength = Math.Max(VhdxLimits.MiB, RoundUp(geometry.BatBytes, VhdxLimits.MiB));
        if (geometry.BatBytes > VhdxLimits.MaxBatBytes)
        {
            throw new InvalidOptionException($"the BAT would be {geometry.BatBytes} bytes; use a larger block_size", path);
        }

        long metadataOffset = batOffset + batLength;
        long dataStart = metadataOffset + MetadataRegionBytes;

        // (A) file identifier with a creator string (spec 2.2.1: diagnostic only).
        byte[] identifier = new byte[VhdxLayout.HeaderBlockBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(identifier, VhdxLayout.FileSignature);
        Encoding.Unicode.GetBytes("imgtool", identifier.AsSpan(VhdxLayout.CreatorOffset, VhdxLayout.CreatorBytes));
        await file.WriteAsync(VhdxLayout.FileIdentifierOffset, identifier, cancellationToken).ConfigureAwait(false);

        // (B, C) two headers; the second, with the higher sequence number, is current.
        var header = new VhdxHeader(1, Guid.NewGuid(), Guid.NewGuid(), Guid.Empty, 0, 1, (uint)logBytes, (ulong)VhdxLayout.HeaderSectionEnd);
        byte[] headerBlock = new byte[VhdxHeader.SizeBytes];
        header.Write(headerBlock);
        await file.WriteAsync(VhdxLayout.Header1Offset, headerBlock, cancellationToken).ConfigureAwait(false);
        (header with { SequenceNumber = 2 }).Write(headerBlock);
        await file.WriteAsync(VhdxLayout.Header2Offset, headerBlock, cancellationToken).ConfigureAwait(false);

        // (D, E) region tables.
        byte[] regionTable = new byte[VhdxRegionTable.SizeBytes];
        VhdxRegionTable.Write(regionTable,
        [
            new VhdxRegion(VhdxRegionTable.BatRegion, (ulong)batOffset, (uint)batLength, true),
            new VhdxRegion(VhdxRegionTable.MetadataRegion, (ulong)metadataOffset, (uint)MetadataRegionBytes, true),
        ]);
        await file.WriteAsync(VhdxLayout.RegionTable1Offset, regionTable, cancellationToken).ConfigureAwait(false);
        await file.WriteAsync(VhdxLayout.RegionTable2Offset, regionTable, cancellationToken).ConfigureAwait(false);

        // (G) the BAT.
        long fileEnd = dataStart;
        VhdxBlockState initial = hasParent ? VhdxBlockState.NotPresent : zeroBlocks ? VhdxBlockState.Zero : VhdxBlockState.NotPresent;
        if (subformat == "fixed" || initial != VhdxBlockState.NotPresent)
        {
            byte[] bat = new byte[geometry.BatBytes];
            for (long block = 0; block < geometry.DataBlocks; block++)
            {
                ulong entry = subformat == "fixed"
                    ? VhdxBatGeometry.Entry(VhdxBlockState.FullyPresent, dataStart + (block * blockBytes))
                    : VhdxBatGeometry.Entry(initial, 0);
                BinaryPrimitives.WriteUInt64LittleEndian(bat.AsSpan((int)(geometry.PayloadIndex(block) * VhdxBatGeometry.EntryBytes)), entry);
            }

            await file.WriteAsync(batOffset, bat, cancellationToken).ConfigureAwait(false);
            if (subformat == "fixed")
            {
                fileEnd = dataStart + (geometry.DataBlocks * blockBytes);
            }
        }

        // (H) metadata, in QEMU's order.
        byte[] parameters = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(parameters, (uint)blockBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(parameters.AsSpan(4),
            (subformat == "fixed" ? VhdxMetadataTable.LeaveBlocksAllocatedBit : 0) | (hasParent ? VhdxMetadataTable.HasParentBit : 0));
        byte[] virtualSize = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(virtualSize, (ulong)size);
        byte[] page83 = Guid.NewGuid().ToByteArray();
        byte[] logical = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(logical, LogicalSectorBytes);
        byte[] physical = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(physical, PhysicalSectorBytes);
        const uint required = VhdxMetadataEntry.IsRequiredBit;
        const uint requiredVirtual = VhdxMetadataEntry.IsRequiredBit | VhdxMetadataEntry.IsVirtualDiskBit;
        var items = new List<(Guid, byte[], uint)>
        {
            (VhdxMetadataTable.FileParameters, parameters, required),
            (VhdxMetadataTable.VirtualDiskSize, virtualSize, requiredVirtual),
            (VhdxMetadataTable.Page83Data, page83, requiredVirtual),
            (VhdxMetadataTable.LogicalSectorSize, logical, requiredVirtual),
            (VhdxMetadataTable.PhysicalSectorSize, physical, requiredVirtual),
        };
        if (locator is not null)
        {
            items.Add((VhdxMetadataTable.ParentLocator, locator.Serialize(), required));
        }

        await file.WriteAsync(metadataOffset, VhdxMetadataTable.Build(items), cancellationToken).ConfigureAwait(false);
        file.SetLength(fileEnd);
    }

    private static async ValueTask<Guid> ReadParentDataWriteGuidAsync(string parentPath, string path, CancellationToken cancellationToken)
    {
        IHostFile parent;
        try
        {
            parent = LinuxHostFile.Open(parentPath, new HostOpenOptions(ReadOnly: true, Lock: HostLockMode.None));
        }
        catch (ImgToolException e)
        {
            throw new BackingFileException($"cannot open the parent '{parentPath}': {e.Message}", path, e);
        }

        using (parent)
        {
            byte[] signature = new byte[8];
            await parent.ReadZeroFilledAsync(0, signature, cancellationToken).ConfigureAwait(false);
            if (BinaryPrimitives.ReadUInt64LittleEndian(signature) != VhdxLayout.FileSignature)
            {
                throw new UnsupportedFeatureException($"the parent of a differencing VHDX must be a VHDX image; '{parentPath}' is not", path);
            }

            (VhdxHeader header, _) = await VhdxOpen.ReadCurrentHeaderAsync(parent, cancellationToken).ConfigureAwait(false);
            return header.DataWriteGuid;
        }
    }

    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}
