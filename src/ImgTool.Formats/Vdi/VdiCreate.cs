using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// Writes new VDIs laid out as qemu-img writes them (header sector, block map at 512, data right after the map, 1 MiB
/// blocks), so qemu-img and VirtualBox read them as we do. A static image has every block in its slot (block i in slot i)
/// and the file at its full length, sparse, as qemu makes it. A differencing image (-b) links its parent by UUID, as
/// VirtualBox's snapshots do.
/// </summary>
internal static class VdiCreate
{
    public static async ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken)
    {
        bool isStatic = request.Options.GetBool("static") ?? false;
        if (request.BackingFile is not null)
        {
            if (isStatic)
            {
                throw new InvalidOptionException("a VDI with a backing file is a differencing image: static=on cannot be used with it", file.Path);
            }

            await CreateDifferencingAsync(file, request, cancellationToken).ConfigureAwait(false);
            return;
        }

        long size = RoundedSize(request.SizeBytes, file.Path);
        uint blocks = (uint)((size + VdiLimits.DefaultBlockBytes - 1) / VdiLimits.DefaultBlockBytes);
        VdiHeader header = VdiHeader.CreateNew(
            isStatic ? VdiImageType.Static : VdiImageType.Dynamic, (ulong)size, blocks, isStatic ? blocks : 0, Guid.NewGuid(), Guid.NewGuid(), Guid.Empty, Guid.Empty);
        uint[] map = new uint[blocks];
        for (uint i = 0; i < blocks; i++)
        {
            map[i] = isStatic ? i : VdiBlockMap.Free;
        }

        await WriteAsync(file, header, map, cancellationToken).ConfigureAwait(false);
        if (isStatic)
        {
            // As qemu: the data area exists at its full length but is not written (a sparse file reads as zeros).
            file.SetLength(header.DataOffsetBytes + ((long)blocks * header.BlockBytes));
        }
    }

    /// <summary>qemu-img rounds sizes up to whole sectors; larger disks than imgtool can open again are refused.</summary>
    private static long RoundedSize(long requested, string path)
    {
        if (requested < 0 || requested > VdiLimits.MaxCreateSizeBytes)
        {
            throw new UnsupportedFeatureException($"unsupported VDI image size {requested}: the largest is {VdiLimits.MaxCreateSizeBytes} bytes ({VdiLimits.MaxCreateSizeBytes >> 40} TiB)", path);
        }

        return VdiHeader.RoundUpToSector(requested);
    }

    private static async ValueTask CreateDifferencingAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken)
    {
        if (request.BackingFormat is { } format && format != "vdi")
        {
            throw new UnsupportedFeatureException($"a differencing VDI's parent must be a VDI, not {format}", file.Path);
        }

        VdiHeader parent;
        try
        {
            using IHostFile parentFile = request.OpenRelatedFile?.Invoke(request.BackingFile!)
                ?? LinuxHostFile.Open(ImageOpener.ResolveBackingPath(file.Path, request.BackingFile!), new HostOpenOptions(ReadOnly: true, Lock: HostLockMode.None));
            parent = await VdiImage.ReadHeaderAsync(parentFile, cancellationToken).ConfigureAwait(false);
        }
        catch (ImageFormatException e)
        {
            throw new UnsupportedFeatureException($"a differencing VDI's parent must be a VDI: {e.Message}", file.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BackingFileException($"cannot open the parent '{request.BackingFile}': {e.Message}", file.Path, e);
        }

        long parentSize = (long)VdiHeaderCheck.RoundedDiskSize(parent);
        if (RoundedSize(request.SizeBytes, file.Path) != parentSize)
        {
            throw new UnsupportedFeatureException($"a differencing VDI has its parent's size ({parentSize} bytes), not {request.SizeBytes}", file.Path);
        }

        // VirtualBox's VDCreateDiff: the child's linkage is the parent's creation UUID, and it records the parent's
        // modification UUID at this moment; the child gets UUIDs of its own.
        uint blocks = (uint)((parentSize + VdiLimits.DefaultBlockBytes - 1) / VdiLimits.DefaultBlockBytes);
        VdiHeader header = VdiHeader.CreateNew(
            VdiImageType.Differencing, (ulong)parentSize, blocks, 0, Guid.NewGuid(), Guid.NewGuid(), parent.UuidCreate, parent.UuidModify);
        uint[] map = new uint[blocks];
        Array.Fill(map, VdiBlockMap.Free);
        await WriteAsync(file, header, map, cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask WriteAsync(IHostFile file, VdiHeader header, uint[] map, CancellationToken cancellationToken)
    {
        await file.WriteAsync(0, header.ToBytes(), cancellationToken).ConfigureAwait(false);
        long mapBytes = header.DataOffsetBytes - header.BlockMapOffsetBytes;
        if (mapBytes > 0)
        {
            await file.WriteAsync(header.BlockMapOffsetBytes, VdiBlockMap.Serialize(map, mapBytes), cancellationToken).ConfigureAwait(false);
        }
    }
}
