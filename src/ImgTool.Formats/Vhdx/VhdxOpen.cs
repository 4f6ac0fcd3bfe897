using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vhdx;

/// <summary>
/// Opening a VHDX file (spec 2.2 and 3): file identifier, current header, log replay, region
/// table, metadata, BAT, then the parent of a differencing image.
/// </summary>
internal static class VhdxOpen
{
    public static async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken)
    {
        string path = file.Path;
        byte[] block = new byte[VhdxLayout.HeaderBlockBytes];
        await file.ReadZeroFilledAsync(0, block.AsMemory(0, 8), cancellationToken).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64LittleEndian(block) != VhdxLayout.FileSignature)
        {
            throw new ImageFormatException("not a VHDX file (no 'vhdxfile' signature)", path);
        }

        (VhdxHeader header, int slot) = await ReadCurrentHeaderAsync(file, cancellationToken).ConfigureAwait(false);
        CheckLog(header, file);

        List<VhdxLogWrite>? patches = null;
        bool replayed = false;
        if (header.LogGuid != Guid.Empty)
        {
            (List<VhdxLogWrite> writes, long lastFileOffset) = await VhdxLog.ReadActiveSequenceAsync(file, header, cancellationToken).ConfigureAwait(false);
            if (writes.Count > 0)
            {
                if (file.IsReadOnly)
                {
                    // Spec 2.3.3 says replay before reading; a read-only open replays in memory
                    // (QEMU refuses to open such an image read-only).
                    patches = writes;
                }
                else
                {
                    await ReplayAsync(file, writes, lastFileOffset, cancellationToken).ConfigureAwait(false);
                    replayed = true;
                }
            }

            if (!file.IsReadOnly)
            {
                header = await ClearLogGuidAsync(file, header, slot, cancellationToken).ConfigureAwait(false);
                slot = 1 - slot;
            }
        }

        async ValueTask ReadAsync(long offset, Memory<byte> buffer)
        {
            await file.ReadZeroFilledAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
            if (patches is not null)
            {
                VhdxImage.ApplyPatches(patches, offset, buffer.Span);
            }
        }

        List<VhdxRegion>? regions = null;
        foreach (long offset in new[] { VhdxLayout.RegionTable1Offset, VhdxLayout.RegionTable2Offset })
        {
            await ReadAsync(offset, block).ConfigureAwait(false);
            regions = VhdxRegionTable.TryRead(block);
            if (regions is not null)
            {
                break;
            }
        }

        if (regions is null)
        {
            throw new ImageCorruptException("both region tables are damaged (bad signature or checksum)", "region table", VhdxLayout.RegionTable1Offset, path);
        }

        VhdxRegion? bat = null;
        VhdxRegion? metadata = null;
        foreach (VhdxRegion region in regions)
        {
            if (region.Id == VhdxRegionTable.BatRegion)
            {
                bat = region;
            }
            else if (region.Id == VhdxRegionTable.MetadataRegion)
            {
                metadata = region;
            }
            else if (region.Required)
            {
                throw new UnsupportedFeatureException($"the image needs region {region.Id}, which this build does not know", path);
            }

            if (region.FileOffsetBytes % (ulong)VhdxLimits.MiB != 0 || region.FileOffsetBytes < (ulong)VhdxLayout.HeaderSectionEnd
                || region.FileOffsetBytes > (ulong)VhdxLimits.MaxFileOffsetBytes || region.LengthBytes % VhdxLimits.MiB != 0)
            {
                throw new ImageCorruptException($"region {region.Id} at {region.FileOffsetBytes} (length {region.LengthBytes}) is not a 1 MiB aligned place in the file", "region table", VhdxLayout.RegionTable1Offset, path);
            }
        }

        if (bat is not { } batRegion || metadata is not { } metadataRegion)
        {
            throw new ImageCorruptException("the region table lacks the BAT or the metadata region", "region table", VhdxLayout.RegionTable1Offset, path);
        }

        var metadataTable = new byte[VhdxMetadataTable.TableBytes];
        long metadataOffset = (long)metadataRegion.FileOffsetBytes;
        await ReadAsync(metadataOffset, metadataTable).ConfigureAwait(false);
        List<VhdxMetadataEntry> entries = VhdxMetadataTable.ReadEntries(metadataTable, metadataRegion.LengthBytes, path);

        async ValueTask<byte[]?> ItemAsync(Guid id, int minimumLength)
        {
            VhdxMetadataEntry? entry = entries.FirstOrDefault(e => e.ItemId == id && !e.IsUser);
            if (entry is not { } e || e.ItemId != id)
            {
                return null;
            }

            if (e.LengthBytes < minimumLength)
            {
                throw new ImageCorruptException($"metadata item {id} is {e.LengthBytes} bytes, shorter than {minimumLength}", "metadata", metadataOffset + e.OffsetBytes, path);
            }

            byte[] data = new byte[e.LengthBytes];
            await ReadAsync(metadataOffset + e.OffsetBytes, data).ConfigureAwait(false);
            return data;
        }

        foreach (VhdxMetadataEntry entry in entries)
        {
            if (entry.IsRequired && !entry.IsUser && !VhdxMetadataTable.IsKnown(entry.ItemId))
            {
                throw new UnsupportedFeatureException($"the image needs metadata item {entry.ItemId}, which this build does not know", path);
            }
        }

        byte[] fileParameters = await ItemAsync(VhdxMetadataTable.FileParameters, 8).ConfigureAwait(false)
            ?? throw Missing("file parameters");
        byte[] virtualSize = await ItemAsync(VhdxMetadataTable.VirtualDiskSize, 8).ConfigureAwait(false)
            ?? throw Missing("virtual disk size");
        byte[] logicalSector = await ItemAsync(VhdxMetadataTable.LogicalSectorSize, 4).ConfigureAwait(false)
            ?? throw Missing("logical sector size");
        byte[]? physicalSector = await ItemAsync(VhdxMetadataTable.PhysicalSectorSize, 4).ConfigureAwait(false);

        long blockSize = BinaryPrimitives.ReadUInt32LittleEndian(fileParameters);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(fileParameters.AsSpan(4));
        bool hasParent = (flags & VhdxMetadataTable.HasParentBit) != 0;
        ulong sizeBytes = BinaryPrimitives.ReadUInt64LittleEndian(virtualSize);
        uint sectorBytes = BinaryPrimitives.ReadUInt32LittleEndian(logicalSector);
        uint physicalBytes = physicalSector is null ? 512 : BinaryPrimitives.ReadUInt32LittleEndian(physicalSector);
        if (blockSize < VhdxLimits.MinBlockSizeBytes || blockSize > VhdxLimits.MaxBlockSizeBytes || (blockSize & (blockSize - 1)) != 0)
        {
            throw new ImageCorruptException($"block size {blockSize} is not a power of two from 1 MiB to 256 MiB", "metadata", metadataOffset, path);
        }

        if (sectorBytes is not (512 or 4096) || physicalBytes is not (512 or 4096))
        {
            throw new ImageCorruptException($"sector sizes {sectorBytes}/{physicalBytes} are not 512 or 4096", "metadata", metadataOffset, path);
        }

        if (sizeBytes == 0 || sizeBytes > (ulong)VhdxLimits.MaxVirtualSizeBytes || sizeBytes % sectorBytes != 0)
        {
            throw new ImageCorruptException($"virtual size {sizeBytes} is not a multiple of the sector size up to 64 TiB", "metadata", metadataOffset, path);
        }

        var geometry = new VhdxBatGeometry((long)sizeBytes, blockSize, (int)sectorBytes, hasParent);
        if (geometry.BatBytes > batRegion.LengthBytes)
        {
            throw new ImageCorruptException($"the BAT region ({batRegion.LengthBytes} bytes) is too small for {geometry.TotalEntries} entries", "region table", VhdxLayout.RegionTable1Offset, path);
        }

        if (geometry.BatBytes > VhdxLimits.MaxBatBytes)
        {
            throw new UnsupportedFeatureException($"the BAT is {geometry.BatBytes} bytes, more than the {VhdxLimits.MaxBatBytes} this build keeps in memory", path);
        }

        VhdxParentLocator? locator = null;
        if (hasParent)
        {
            byte[] item = await ItemAsync(VhdxMetadataTable.ParentLocator, VhdxParentLocator.HeaderBytes).ConfigureAwait(false)
                ?? throw Missing("parent locator");
            locator = VhdxParentLocator.Read(item, path);
            if (locator.LocatorType != VhdxParentLocator.VhdxParentType)
            {
                throw new UnsupportedFeatureException($"parent locator type {locator.LocatorType} is not the VHDX one", path);
            }
        }

        // The table is sized by the file, not only by the header: a BAT past the end of the file
        // is a damaged or hostile image, and must not make us allocate for it.
        long batOffset = (long)batRegion.FileOffsetBytes;
        if (batOffset + geometry.BatBytes > Math.Max(file.Length, patches?.Max(p => p.FileOffsetBytes + p.LengthBytes) ?? 0))
        {
            throw new ImageCorruptException($"the BAT ({geometry.BatBytes} bytes at {batOffset}) reaches past the end of the file", "region table", VhdxLayout.RegionTable1Offset, path);
        }

        ulong[] table = new ulong[geometry.TotalEntries];
        byte[] chunk = new byte[Math.Min(geometry.BatBytes, VhdxLimits.MiB)];
        for (long done = 0; done < geometry.BatBytes; done += chunk.Length)
        {
            int length = (int)Math.Min(chunk.Length, geometry.BatBytes - done);
            await ReadAsync(batOffset + done, chunk.AsMemory(0, length)).ConfigureAwait(false);
            for (int i = 0; i < length; i += VhdxBatGeometry.EntryBytes)
            {
                table[(done + i) / VhdxBatGeometry.EntryBytes] = BinaryPrimitives.ReadUInt64LittleEndian(chunk.AsSpan(i));
            }
        }

        var layout = new VhdxLayoutInfo(
            header, slot, geometry, (long)batRegion.FileOffsetBytes, batRegion.LengthBytes,
            metadataOffset, metadataRegion.LengthBytes, (int)physicalBytes,
            (flags & VhdxMetadataTable.LeaveBlocksAllocatedBit) != 0, locator);

        IImage? parent = null;
        string? parentName = locator is null ? null : ParentName(locator);
        if (locator is not null && context.OpenBackingAsync is { } openBacking)
        {
            (parent, parentName) = await OpenParentAsync(locator, openBacking, path, cancellationToken).ConfigureAwait(false);
        }

        return new VhdxImage(file, layout, table, patches, replayed, parent, parentName);

        ImageCorruptException Missing(string what) => new($"the required {what} metadata item is missing", "metadata", metadataOffset, path);
    }

    /// <summary>Both headers are read; the valid one with the higher sequence number is current (spec 2.2.2).</summary>
    internal static async ValueTask<(VhdxHeader Header, int Slot)> ReadCurrentHeaderAsync(IHostFile file, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[VhdxHeader.SizeBytes];
        VhdxHeader? best = null;
        int slot = -1;
        for (int i = 0; i < 2; i++)
        {
            await file.ReadZeroFilledAsync(i == 0 ? VhdxLayout.Header1Offset : VhdxLayout.Header2Offset, buffer, cancellationToken).ConfigureAwait(false);
            if (VhdxHeader.TryRead(buffer) is { } h && (best is null || h.SequenceNumber > best.Value.SequenceNumber))
            {
                best = h;
                slot = i;
            }
        }

        if (best is not { } header)
        {
            throw new ImageCorruptException("both headers are damaged (bad signature or checksum)", "header", VhdxLayout.Header1Offset, file.Path);
        }

        if (header.Version != 1)
        {
            throw new UnsupportedFeatureException($"VHDX version {header.Version} is not supported (only 1)", file.Path);
        }

        return (header, slot);
    }

    private static void CheckLog(VhdxHeader header, IHostFile file)
    {
        // Spec 2.2.2: the log is 1 MiB aligned, a multiple of 1 MiB, after the header section.
        if (header.LogGuid != Guid.Empty && header.LogVersion != 0)
        {
            throw new UnsupportedFeatureException($"log version {header.LogVersion} is not supported", file.Path);
        }

        if (header.LogOffsetBytes % (ulong)VhdxLimits.MiB != 0 || header.LogLengthBytes % VhdxLimits.MiB != 0
            || header.LogOffsetBytes < (ulong)VhdxLayout.HeaderSectionEnd
            || header.LogOffsetBytes + header.LogLengthBytes > (ulong)Math.Max(file.Length, VhdxLayout.HeaderSectionEnd))
        {
            throw new ImageCorruptException(
                $"the log at {header.LogOffsetBytes} (length {header.LogLengthBytes}) lies outside the file or is not 1 MiB aligned",
                "header", VhdxLayout.Header1Offset, file.Path);
        }
    }

    private static async ValueTask ReplayAsync(IHostFile file, List<VhdxLogWrite> writes, long lastFileOffset, CancellationToken cancellationToken)
    {
        foreach (VhdxLogWrite write in writes)
        {
            if (write.Data is { } data)
            {
                await file.WriteAsync(write.FileOffsetBytes, data, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                file.ZeroRange(write.FileOffsetBytes, write.ZeroLengthBytes);
            }
        }

        if (file.Length < lastFileOffset)
        {
            file.SetLength(lastFileOffset);
        }

        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask<VhdxHeader> ClearLogGuidAsync(IHostFile file, VhdxHeader header, int slot, CancellationToken cancellationToken)
    {
        VhdxHeader cleared = header with { LogGuid = Guid.Empty, SequenceNumber = header.SequenceNumber + 1 };
        byte[] buffer = new byte[VhdxHeader.SizeBytes];
        cleared.Write(buffer);
        await file.WriteAsync(slot == 0 ? VhdxLayout.Header2Offset : VhdxLayout.Header1Offset, buffer, cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        return cleared;
    }

    /// <summary>The parent's name as stored: relative_path first (spec 3.5.2.6.1), then the absolute and volume paths, Windows separators turned to '/'.</summary>
    internal static string? ParentName(VhdxParentLocator locator)
    {
        foreach (string key in new[] { "relative_path", "absolute_win32_path", "volume_path" })
        {
            if (locator[key] is { Length: > 0 } value)
            {
                return ToHostPath(value);
            }
        }

        return null;
    }

    private static string ToHostPath(string value)
    {
        string name = value.Replace('\\', '/');
        return name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name;
    }

    private static async ValueTask<(IImage Parent, string Name)> OpenParentAsync(
        VhdxParentLocator locator, Func<string, string?, CancellationToken, ValueTask<IImage>> openBacking, string path, CancellationToken cancellationToken)
    {
        var tried = new List<string>();
        foreach (string key in new[] { "relative_path", "absolute_win32_path", "volume_path" })
        {
            if (locator[key] is not { Length: > 0 } value)
            {
                continue;
            }

            string name = ToHostPath(value);
            tried.Add(name);
            IImage parent;
            try
            {
                parent = await openBacking(name, null, cancellationToken).ConfigureAwait(false);
            }
            catch (HostIOException)
            {
                continue;
            }

            // Spec 3.5.2.6.1: parent_linkage (or parent_linkage2) is the parent's DataWriteGuid.
            if (parent is VhdxImage vhdx && locator["parent_linkage"] is { } linkage)
            {
                string expected = vhdx.Layout.Header.DataWriteGuid.ToString("B");
                if (!string.Equals(linkage, expected, StringComparison.OrdinalIgnoreCase)
                    && !string.Equals(locator["parent_linkage2"], expected, StringComparison.OrdinalIgnoreCase))
                {
                    await parent.DisposeAsync().ConfigureAwait(false);
                    throw new BackingFileException($"parent '{name}' has changed since this differencing image was made (parent_linkage {linkage}, parent DataWriteGuid {expected})", path);
                }
            }

            return (parent, name);
        }

        throw new BackingFileException(
            tried.Count == 0 ? "the parent locator names no parent path" : $"cannot open the parent image (tried {string.Join(", ", tried)})", path);
    }
}
