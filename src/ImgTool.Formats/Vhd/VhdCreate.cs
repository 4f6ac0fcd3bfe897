using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vhd;

/// <summary>
/// Writes new VHDs laid out as qemu-img writes them (footer copy, dynamic header at 512, BAT at 1536, footer at the end,
/// 2 MiB blocks), so qemu-img reads them as we do. A differencing disk also gets W2ru/W2ku parent locators, placed in
/// front of the BAT: qemu appends new blocks right after the BAT, and would overwrite locators that followed it.
/// </summary>
internal static class VhdCreate
{
    /// <summary>qemu writes "Virtual PC 2007" (5.3) as the creator version; so do we, for readers that look.</summary>
    private const uint CreatorVersion = 0x00050003;

    public static async ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, TimeProvider clock, CancellationToken cancellationToken)
    {
        string subformat = request.Options.GetString("subformat") ?? "dynamic";
        bool forceSize = request.Options.GetBool("force_size") ?? false;
        uint timeStamp = TimeStamp(clock);
        if (request.BackingFile is not null)
        {
            if (request.Options.Contains("subformat") && subformat != "dynamic")
            {
                throw new InvalidOptionException("a VHD with a backing file is a differencing disk: subformat=fixed cannot be used with it", file.Path);
            }

            await CreateDifferencingAsync(file, request, timeStamp, cancellationToken).ConfigureAwait(false);
            return;
        }

        (long size, ushort cylinders, byte heads, byte sectors) = VhdGeometry.ForCreate(request.SizeBytes, forceSize, file.Path);
        bool isFixed = subformat == "fixed";
        var footer = new VhdFooter(
            VhdFooter.FeaturesReserved,
            VhdFooter.Version1,
            isFixed ? VhdFooter.NoDataOffset : VhdFooter.SizeBytes,
            timeStamp,
            VhdFooter.FourCc(forceSize ? "qem2" : "qemu"),
            CreatorVersion,
            VhdFooter.FourCc("Wi2k"),
            (ulong)size,
            (ulong)size,
            cylinders,
            heads,
            sectors,
            isFixed ? VhdDiskType.Fixed : VhdDiskType.Dynamic,
            0,
            Guid.NewGuid(),
            0,
            []);
        if (isFixed)
        {
            byte[] bytes = new byte[VhdFooter.SizeBytes];
            footer.Write(bytes);
            file.SetLength(size);
            await file.WriteAsync(size, bytes, cancellationToken).ConfigureAwait(false);
            return;
        }

        await WriteDynamicAsync(file, footer, size, Guid.Empty, 0, "", [], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The VHD time stamp: seconds since 2000-01-01 UTC.</summary>
    public static uint TimeStamp(TimeProvider clock) =>
        (uint)Math.Clamp(clock.GetUtcNow().ToUnixTimeSeconds() - VhdFooter.EpochUnixSeconds, 0, uint.MaxValue);

    private static async ValueTask CreateDifferencingAsync(IHostFile file, ImageCreateRequest request, uint timeStamp, CancellationToken cancellationToken)
    {
        string parentPath = ImageOpener.ResolveBackingPath(file.Path, request.BackingFile!);
        if (request.BackingFormat is { } format && format != "vpc")
        {
            throw new UnsupportedFeatureException($"a differencing VHD's parent must be a VHD (vpc), not {format}", file.Path);
        }

        VhdFooter parent;
        try
        {
            using LinuxHostFile parentFile = LinuxHostFile.Open(parentPath, new HostOpenOptions(ReadOnly: true, Lock: HostLockMode.None));
            (parent, _, _) = await VhdImage.ReadFooterAsync(parentFile, cancellationToken).ConfigureAwait(false);
        }
        catch (ImageFormatException e)
        {
            throw new UnsupportedFeatureException($"a differencing VHD's parent must be a VHD: {e.Message}", file.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BackingFileException($"cannot open the parent '{request.BackingFile}': {e.Message}", file.Path, e);
        }

        long parentSize = VhdGeometry.VirtualSize(parent);
        if (request.SizeBytes != parentSize)
        {
            throw new UnsupportedFeatureException($"a differencing VHD has its parent's size ({parentSize} bytes), not {request.SizeBytes}", file.Path);
        }

        // The child takes the parent's geometry and size; its creator says how to size it: by CHS only when that is how
        // the parent's size came about.
        bool sizedByChs = parent.CylinderHeadSectorCount * VhdLimits.SectorBytes == parentSize && parent.CylinderHeadSectorCount != VhdLimits.MaxGeometrySectors;
        var footer = parent with
        {
            Features = VhdFooter.FeaturesReserved,
            FileFormatVersion = VhdFooter.Version1,
            DataOffset = VhdFooter.SizeBytes,
            TimeStamp = timeStamp,
            CreatorApplication = VhdFooter.FourCc(sizedByChs ? "qemu" : "qem2"),
            CreatorVersion = CreatorVersion,
            CreatorHostOs = VhdFooter.FourCc("Wi2k"),
            OriginalSize = (ulong)parentSize,
            CurrentSize = (ulong)parentSize,
            DiskType = VhdDiskType.Differencing,
            UniqueId = Guid.NewGuid(),
            SavedState = 0,
            Reserved = [],
        };

        string absolute = Path.GetFullPath(parentPath);
        string relative = Path.GetRelativePath(Path.GetDirectoryName(Path.GetFullPath(file.Path)) ?? ".", absolute);
        if (!relative.StartsWith("..", StringComparison.Ordinal))
        {
            relative = "./" + relative;
        }

        string[] locatorPaths = [relative.Replace('/', '\\'), absolute.Replace('/', '\\')];
        await WriteDynamicAsync(file, footer, parentSize, parent.UniqueId, parent.TimeStamp, Path.GetFileName(parentPath), locatorPaths, cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask WriteDynamicAsync(
        IHostFile file, VhdFooter footer, long size, Guid parentId, uint parentTimeStamp, string parentName, string[] locatorPaths, CancellationToken cancellationToken)
    {
        const int sector = VhdLimits.SectorBytes;
        long entries = (size + VhdLimits.DefaultBlockBytes - 1) / VhdLimits.DefaultBlockBytes;
        long position = VhdFooter.SizeBytes + VhdDynamicHeader.SizeBytes;

        // Locators: W2ru then W2ku, UTF-16LE, each in whole sectors; Hyper-V counts their data space in bytes.
        var locators = new VhdParentLocator[VhdDynamicHeader.LocatorCount];
        var locatorData = new List<(long Offset, byte[] Data)>();
        uint[] platforms = [VhdParentLocator.W2ru, VhdParentLocator.W2ku];
        for (int i = 0; i < locatorPaths.Length; i++)
        {
            byte[] data = Encoding.Unicode.GetBytes(locatorPaths[i]);
            long space = (data.Length + sector - 1) / sector * sector;
            locators[i] = new VhdParentLocator(platforms[i], (uint)space, (uint)data.Length, 0, (ulong)position);
            locatorData.Add((position, data));
            position += space;
        }

        long tableOffset = position;
        long tableBytes = (entries * 4 + sector - 1) / sector * sector;
        var header = new VhdDynamicHeader(
            ulong.MaxValue, (ulong)tableOffset, VhdFooter.Version1, (uint)entries, VhdLimits.DefaultBlockBytes, 0, parentId, parentTimeStamp, parentName, locators);

        byte[] footerBytes = new byte[VhdFooter.SizeBytes];
        footer.Write(footerBytes);
        byte[] headerBytes = new byte[VhdDynamicHeader.SizeBytes];
        header.Write(headerBytes);
        byte[] table = new byte[tableBytes];
        table.AsSpan().Fill(0xff);

        await file.WriteAsync(0, footerBytes, cancellationToken).ConfigureAwait(false);
        await file.WriteAsync(VhdFooter.SizeBytes, headerBytes, cancellationToken).ConfigureAwait(false);
        foreach (var (offset, data) in locatorData)
        {
            await file.WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
        }

        await file.WriteAsync(tableOffset, table, cancellationToken).ConfigureAwait(false);
        await file.WriteAsync(tableOffset + tableBytes, footerBytes, cancellationToken).ConfigureAwait(false);
    }
}
