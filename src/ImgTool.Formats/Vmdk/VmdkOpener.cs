using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vmdk;

/// <summary>Opens a VMDK from its first file: a sparse extent with an embedded descriptor, or a descriptor file
/// whose extents are opened next to it (and only there).</summary>
internal static class VmdkOpener
{
    public static async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken)
    {
        long length = file.Length;
        if (length < 4)
        {
            throw new ImageFormatException("file is too small, not a valid image", file.Path);
        }

        byte[] head = new byte[(int)Math.Min(length, VmdkSparseHeader.SizeBytes)];
        await file.ReadZeroFilledAsync(0, head, cancellationToken).ConfigureAwait(false);
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(head);
        if (magic == VmdkSparseHeader.Vmdk3Magic)
        {
            throw new UnsupportedFeatureException("a VMDK3 / vmfsSparse (COWD) extent is opened through its descriptor file, not on its own", file.Path);
        }

        var extents = new List<VmdkExtent>();
        IImage? backing = null;
        try
        {
            VmdkDescriptor descriptor;
            string text;
            VmdkDescriptorPlace place;
            string createType;
            if (magic == VmdkSparseHeader.Magic)
            {
                if (head.Length < VmdkSparseHeader.SizeBytes)
                {
                    throw new ImageFormatException("file is too small for a VMDK sparse header", file.Path);
                }

                VmdkSparseHeader header = VmdkSparseHeader.Read(head, file.Path);
                if (header.DescriptorOffsetSectors == 0 || header.DescriptorSizeSectors == 0)
                {
                    throw new ImageFormatException("invalid VMDK image descriptor: the sparse extent embeds none", file.Path);
                }

                long descriptorOffset = checked((long)Math.Min(header.DescriptorOffsetSectors, (ulong)(length / VmdkLimits.SectorBytes)) * VmdkLimits.SectorBytes);
                long descriptorBytes = (long)Math.Min(header.DescriptorSizeSectors, VmdkLimits.MaxDescriptorBytes / VmdkLimits.SectorBytes) * VmdkLimits.SectorBytes;
                text = await ReadTextAsync(file, descriptorOffset, descriptorBytes, cancellationToken).ConfigureAwait(false);
                descriptor = VmdkDescriptor.Parse(text, file.Path);
                place = new VmdkDescriptorPlace(descriptorOffset, descriptorBytes, false);
                if (header.CapacitySectors == 0)
                {
                    // A header with no capacity only carries a descriptor that names the real extents (QEMU handles this too).
                    createType = CheckCreateType(descriptor, file.Path);
                    await OpenExtentsAsync(file, descriptor, context, extents, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    VmdkSparseExtent extent = await VmdkSparseExtent.OpenAsync(file, 0, string.Empty, ownsFile: false, context.ReadOnly, cancellationToken).ConfigureAwait(false);
                    extents.Add(extent);

                    // As QEMU: the header decides, whatever createType the embedded descriptor says.
                    createType = extent.IsCompressed ? VmdkCreate.StreamOptimized : VmdkCreate.MonolithicSparse;
                }
            }
            else
            {
                text = await ReadTextAsync(file, 0, Math.Min(length, VmdkLimits.MaxDescriptorBytes), cancellationToken).ConfigureAwait(false);
                if (!text.Contains("createType", StringComparison.Ordinal))
                {
                    throw new ImageFormatException("invalid VMDK image descriptor (no createType)", file.Path);
                }

                descriptor = VmdkDescriptor.Parse(text, file.Path);
                createType = CheckCreateType(descriptor, file.Path);
                place = new VmdkDescriptorPlace(0, VmdkLimits.MaxDescriptorBytes, true);
                await OpenExtentsAsync(file, descriptor, context, extents, cancellationToken).ConfigureAwait(false);
            }

            if (extents.Count == 0)
            {
                throw new ImageFormatException("the VMDK descriptor names no usable extent", file.Path);
            }

            if (descriptor.ParentFileNameHint is { } parent && context.OpenBackingAsync is { } openBacking)
            {
                try
                {
                    backing = await openBacking(parent, "vmdk", cancellationToken).ConfigureAwait(false);
                }
                catch (ImgToolException e) when (e is not BackingFileException)
                {
                    throw BackingFileErrors.CouldNotOpen(file.Path, parent, e);
                }
            }

            bool stream = extents is [VmdkSparseExtent { IsCompressed: true }];
            return stream
                ? new VmdkStreamImage(file, descriptor, text, place, extents, createType, backing, context.ReadOnly)
                : new VmdkImage(file, descriptor, text, place, extents, createType, backing, context.ReadOnly);
        }
        catch
        {
            foreach (VmdkExtent extent in extents)
            {
                extent.Dispose();
            }

            if (backing is not null)
            {
                await backing.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>Reads the CID of a VMDK file (for a new delta disk's parentCID); null when the file is not a VMDK.</summary>
    public static async ValueTask<uint?> ReadCidAsync(IHostFile file, CancellationToken cancellationToken)
    {
        long length = file.Length;
        if (length < 4)
        {
            return null;
        }

        byte[] head = new byte[(int)Math.Min(length, VmdkSparseHeader.SizeBytes)];
        await file.ReadZeroFilledAsync(0, head, cancellationToken).ConfigureAwait(false);
        string text;
        if (VmdkSparseHeader.HasMagic(head))
        {
            if (head.Length < VmdkSparseHeader.SizeBytes)
            {
                return null;
            }

            VmdkSparseHeader header = VmdkSparseHeader.Read(head, file.Path);
            long bytes = (long)Math.Min(header.DescriptorSizeSectors, VmdkLimits.MaxDescriptorBytes / VmdkLimits.SectorBytes) * VmdkLimits.SectorBytes;
            long offset = (long)Math.Min(header.DescriptorOffsetSectors, (ulong)(length / VmdkLimits.SectorBytes)) * VmdkLimits.SectorBytes;
            text = await ReadTextAsync(file, offset, bytes, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            text = await ReadTextAsync(file, 0, Math.Min(length, VmdkLimits.MaxDescriptorBytes), cancellationToken).ConfigureAwait(false);
        }

        try
        {
            return VmdkDescriptor.Parse(text, file.Path).Cid;
        }
        catch (ImageFormatException)
        {
            return null;
        }
    }

    private static string CheckCreateType(VmdkDescriptor descriptor, string path)
    {
        string createType = descriptor.CreateType ?? throw new ImageFormatException("invalid VMDK image descriptor (no createType)", path);
        if (!VmdkDescriptor.DescriptorFileTypes.Contains(createType))
        {
            throw new UnsupportedFeatureException($"unsupported VMDK image type '{createType}'", path);
        }

        return createType;
    }

    private static async ValueTask OpenExtentsAsync(IHostFile file, VmdkDescriptor descriptor, ImageOpenContext context, List<VmdkExtent> extents, CancellationToken cancellationToken)
    {
        long start = 0;
        foreach (VmdkExtentLine line in descriptor.Extents)
        {
            if (line.IsRawDevice)
            {
                throw new UnsupportedFeatureException(
                    $"extent {extents.Count + 1} is a raw device map ({line.Type}) onto '{line.FileName}': raw device maps are not supported; read the device itself as raw",
                    file.Path);
            }

            if (line.Type is not ("FLAT" or "VMFS" or "SPARSE" or "VMFSSPARSE" or "SESPARSE" or "ZERO"))
            {
                throw new UnsupportedFeatureException($"unsupported extent type '{line.Type}'", file.Path);
            }

            if (line.Access is not ("RW" or "RDONLY" or "NOACCESS"))
            {
                throw new ImageFormatException($"invalid extent access mode '{line.Access}'", file.Path);
            }

            // ZERO and NOACCESS extents take their place in the disk without a file being opened: QEMU 7.2 drops them
            // and moves every later extent's data down, which reads the wrong bytes; we keep the addresses.
            if (line.IsZero || line.Access == "NOACCESS")
            {
                long sizeBytes = line.SizeSectors * VmdkLimits.SectorBytes;
                extents.Add(line.Access == "NOACCESS"
                    ? new VmdkNoAccessExtent(file, start, sizeBytes, line.Type, line.FileName) { Access = line.Access }
                    : new VmdkZeroExtent(file, start, sizeBytes) { Access = line.Access });
                start += sizeBytes;
                if (start > VmdkLimits.MaxCapacitySectors * VmdkLimits.SectorBytes)
                {
                    throw new ImageFormatException("the extents add up to more than the largest supported disk (64 TiB)", file.Path);
                }

                continue;
            }

            if (!context.AllowOutsideFiles && !RelatedFileNames.IsConfined(file.Path, line.FileName))
            {
                throw new ImageFormatException($"extent file '{line.FileName}' is outside the descriptor's folder; refusing to open it (--allow-outside-extents opens it)", file.Path);
            }

            Func<string, bool, IHostFile> openRelated = context.OpenRelatedFile
                ?? throw new UnsupportedFeatureException("the image's extent files cannot be opened here (no folder)", file.Path);
            bool extentReadOnly = context.ReadOnly || line.Access == "RDONLY";
            IHostFile extentFile = openRelated(line.FileName, extentReadOnly);
            try
            {
                VmdkExtent extent;
                if (line.Type == "SESPARSE")
                {
                    extent = await VmdkSeSparseExtent.OpenAsync(extentFile, start, line.Type, ownsFile: true, extentReadOnly, cancellationToken).ConfigureAwait(false);
                }
                else if (line.IsFlat)
                {
                    extent = new VmdkFlatExtent(extentFile, start, line.SizeSectors * VmdkLimits.SectorBytes, line.Type, line.FlatOffsetSectors * VmdkLimits.SectorBytes, ownsFile: true);
                }
                else
                {
                    extent = await VmdkSparseExtent.OpenAsync(extentFile, start, line.Type, ownsFile: true, extentReadOnly, cancellationToken).ConfigureAwait(false);
                }

                extent.Access = line.Access;
                extents.Add(extent);
                start += extent.SizeBytes;
                if (start > VmdkLimits.MaxCapacitySectors * VmdkLimits.SectorBytes)
                {
                    throw new ImageFormatException("the extents add up to more than the largest supported disk (64 TiB)", file.Path);
                }
            }
            catch
            {
                if (!extents.Any(e => ReferenceEquals(e.File, extentFile)))
                {
                    extentFile.Dispose();
                }

                throw;
            }
        }
    }

    private static async ValueTask<string> ReadTextAsync(IHostFile file, long offsetBytes, long lengthBytes, CancellationToken cancellationToken)
    {
        byte[] bytes = new byte[Math.Max(0, Math.Min(lengthBytes, VmdkLimits.MaxDescriptorBytes))];
        await file.ReadZeroFilledAsync(offsetBytes, bytes, cancellationToken).ConfigureAwait(false);
        return VmdkDescriptor.Decode(bytes);
    }
}
