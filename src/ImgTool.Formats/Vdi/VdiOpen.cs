using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vdi;

internal sealed partial class VdiImage
{
    /// <summary>Reads and validates the header sector; every field that sizes something is checked here.</summary>
    public static async ValueTask<VdiHeader> ReadHeaderAsync(IHostFile file, CancellationToken cancellationToken)
    {
        long length = file.Length;
        byte[] sector = new byte[VdiHeader.SizeBytes];
        await file.ReadZeroFilledAsync(0, sector, cancellationToken).ConfigureAwait(false);
        if (!VdiHeader.HasSignature(sector))
        {
            throw new ImageFormatException("not a VDI image: no VDI signature at offset 64", file.Path);
        }

        if (length < VdiHeader.Header1End)
        {
            throw new ImageCorruptException($"the file ends inside the VDI header ({length} bytes, {VdiHeader.Header1End} needed)", "header", length, file.Path);
        }

        VdiHeader header = VdiHeader.Read(sector);
        VdiHeaderCheck.Validate(header, length, file.Path);
        return header;
    }

    public static async ValueTask<VdiImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken)
    {
        VdiHeader header = await ReadHeaderAsync(file, cancellationToken).ConfigureAwait(false);
        long size = (long)VdiHeaderCheck.RoundedDiskSize(header);
        uint[] map = await ReadBlockMapAsync(file, header, cancellationToken).ConfigureAwait(false);
        VdiBlockMapScan scan = VdiBlockMap.Scan(map, header, size, file.Length);
        string? parentName = null;
        IImage? parent = null;
        if (header.IsDifferencing)
        {
            (parentName, parent) = await OpenParentAsync(file, header, context, cancellationToken).ConfigureAwait(false);
        }

        return new VdiImage(new VdiOpenState(file, header, map, size, scan, parentName, parent));
    }

    /// <summary>Reads the map in bounded chunks (the header check has put it inside the file and under the entry limit).</summary>
    private static async ValueTask<uint[]> ReadBlockMapAsync(IHostFile file, VdiHeader header, CancellationToken cancellationToken)
    {
        uint[] map = new uint[header.BlockCount];
        byte[] chunk = new byte[(int)Math.Min(header.BlockMapBytes, VdiLimits.CopyChunkBytes)];
        for (long done = 0; done < header.BlockMapBytes;)
        {
            int length = (int)Math.Min(chunk.Length, header.BlockMapBytes - done);
            await file.ReadZeroFilledAsync(header.BlockMapOffsetBytes + done, chunk.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            VdiBlockMap.Parse(chunk.AsSpan(0, length), length / 4).CopyTo(map, done / 4);
            done += length;
        }

        return map;
    }

    /// <summary>
    /// A differencing image stores no parent file name, only the parent's creation UUID (uuidLinkage; VirtualBox keeps the
    /// file names in its machine XML). The parent is the file the user names (--image-opts backing.file.filename=), else
    /// the .vdi file in the same folder whose uuidCreate is that UUID. It must be a VDI with that UUID. Its modification
    /// UUID need not equal the child's uuidParentModify: VirtualBox records it to notice a changed parent, but still
    /// opens the chain, and so do we.
    /// </summary>
    private static async ValueTask<(string? Name, IImage? Parent)> OpenParentAsync(IHostFile file, VdiHeader header, ImageOpenContext context, CancellationToken cancellationToken)
    {
        string? name = context.BackingFileOverride
            ?? await VdiParentSearch.FindAsync(file.Path, header.UuidLinkage, header.UuidParentModify, cancellationToken).ConfigureAwait(false);
        if (context.OpenBackingAsync is not { } open)
        {
            return (name, null);
        }

        if (name is null)
        {
            throw new BackingFileException(
                $"the parent of this differencing VDI (UUID {header.UuidLinkage}) is not among the .vdi files in its folder; name it with --image-opts driver=vdi,file.filename=IMAGE,backing.file.filename=PARENT",
                file.Path);
        }

        IImage parent = await open(name, "vdi", cancellationToken).ConfigureAwait(false);
        try
        {
            if (parent is not VdiImage vdi)
            {
                throw new BackingFileException($"the parent '{name}' is not a VDI", file.Path);
            }

            if (vdi.Header.UuidCreate != header.UuidLinkage)
            {
                throw new BackingFileException(
                    $"the parent '{name}' is not the image this one was made from: its UUID is {vdi.Header.UuidCreate}, expected {header.UuidLinkage}", file.Path);
            }

            return (name, parent);
        }
        catch
        {
            await parent.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
