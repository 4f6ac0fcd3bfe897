using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// Creating VMDKs with the layouts qemu-img 7.2 writes (block/vmdk.c vmdk_co_do_create), except streamOptimized,
/// which is written in VMware's stream layout (grain directory at the end, footer, end-of-stream marker) as
/// ESXi and OVA imports expect.
/// </summary>
internal static class VmdkCreate
{
    public const string MonolithicSparse = "monolithicSparse";
    public const string MonolithicFlat = "monolithicFlat";
    public const string TwoGbMaxExtentSparse = "twoGbMaxExtentSparse";
    public const string TwoGbMaxExtentFlat = "twoGbMaxExtentFlat";
    public const string StreamOptimized = "streamOptimized";

    /// <summary>An ESXi datastore disk: a "vmfs" descriptor with one VMFS flat extent (an imgtool extension; qemu-img
    /// reads these but cannot create them).</summary>
    public const string Vmfs = "vmfs";

    /// <summary>64 KiB grains, as VMware and QEMU make them.</summary>
    public const ulong GrainSectors = 128;

    public const uint GtesPerGt = 512;

    /// <summary>The embedded descriptor's room: 20 sectors from sector 1, as QEMU.</summary>
    public const ulong DescriptorOffsetSectors = 1;
    public const ulong DescriptorSizeSectors = 20;

    public static readonly IReadOnlyList<string> Subformats = [MonolithicSparse, MonolithicFlat, TwoGbMaxExtentSparse, TwoGbMaxExtentFlat, StreamOptimized, Vmfs];

    public static readonly IReadOnlyList<string> AdapterTypes = ["ide", "buslogic", "lsilogic", "legacyESX"];

    public static IReadOnlyList<ImageOptionSpec> OptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("adapter_type", ImageOptionKind.Choice, "Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX", AdapterTypes),
        new("backing_file", ImageOptionKind.String, "File name of a base image"),
        new("backing_fmt", ImageOptionKind.String, "Must be 'vmdk' if present"),
        new("compat6", ImageOptionKind.Bool, "VMDK version 6 image", Default: "off"),
        new("hwversion", ImageOptionKind.String, "VMDK hardware version", Default: "undefined"),
        new("toolsversion", ImageOptionKind.String, "VMware guest tools version"),
        new("subformat", ImageOptionKind.Choice, "VMDK flat extent format, can be one of {monolithicSparse (default) | monolithicFlat | twoGbMaxExtentSparse | twoGbMaxExtentFlat | streamOptimized | vmfs}", Subformats),
        new("zeroed_grain", ImageOptionKind.Bool, "Enable efficient zero writes using the zeroed-grain GTE feature"),
    ];

    public static async ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken)
    {
        ImageOptions options = request.Options;
        string subformat = options.GetString("subformat") ?? MonolithicSparse;
        string adapterType = options.GetString("adapter_type") ?? "ide";
        string? hwVersion = options.GetString("hwversion") is { } hw && hw != "undefined" ? hw : null;
        string toolsVersion = options.GetString("toolsversion") ?? "2147483647";
        bool compat6 = options.GetBool("compat6") ?? false;
        bool zeroedGrain = options.GetBool("zeroed_grain") ?? false;
        string? backingFile = request.BackingFile ?? options.GetString("backing_file");
        string? backingFormat = request.BackingFormat ?? options.GetString("backing_fmt");
        bool flat = subformat is MonolithicFlat or TwoGbMaxExtentFlat or Vmfs;
        bool split = subformat is TwoGbMaxExtentSparse or TwoGbMaxExtentFlat;
        long sizeBytes = (request.SizeBytes + VmdkLimits.SectorBytes - 1) / VmdkLimits.SectorBytes * VmdkLimits.SectorBytes;

        if (compat6 && hwVersion is not null)
        {
            throw new InvalidOptionException("compat6 cannot be enabled with hwversion set", file.Path);
        }

        hwVersion ??= compat6 ? "6" : "4";
        if (flat && backingFile is not null)
        {
            throw new UnsupportedFeatureException("a flat image can't have a backing file", file.Path);
        }

        if (flat && zeroedGrain)
        {
            throw new UnsupportedFeatureException("a flat image can't enable zeroed grain", file.Path);
        }

        if (backingFormat is not null && backingFormat != "vmdk")
        {
            throw new InvalidOptionException($"backing file must be a vmdk image, not {backingFormat}", file.Path);
        }

        if (!flat && sizeBytes > (split ? VmdkLimits.MaxCapacitySectors * VmdkLimits.SectorBytes : 2L << 40))
        {
            throw new InvalidOptionException($"size {sizeBytes} is larger than a {subformat} VMDK can hold ({(split ? "64 TiB" : "2 TiB")})", file.Path);
        }

        if (sizeBytes > VmdkLimits.MaxCapacitySectors * VmdkLimits.SectorBytes)
        {
            throw new InvalidOptionException($"size {sizeBytes} is larger than the largest supported VMDK (64 TiB)", file.Path);
        }

        uint parentCid = VmdkDescriptor.NoParentCid;
        if (backingFile is not null)
        {
            parentCid = await ReadParentCidAsync(file, request, backingFile, cancellationToken).ConfigureAwait(false);
        }

        var descriptor = new VmdkDescriptor
        {
            Cid = RandomCid(),
            ParentCid = parentCid,
            CreateType = subformat,
            ParentFileNameHint = backingFile,
        };

        string name = Path.GetFileName(file.Path);
        int dot = name.LastIndexOf('.');
        string prefix = dot < 0 ? name : name[..dot];
        string postfix = dot < 0 ? string.Empty : name[dot..];
        var created = new List<IHostFile>();
        try
        {
            if (!split && !flat)
            {
                descriptor.Extents.Add(new VmdkExtentLine("RW", sizeBytes / VmdkLimits.SectorBytes, "SPARSE", name, 0));
                if (subformat == StreamOptimized)
                {
                    await WriteStreamExtentAsync(file, sizeBytes, zeroedGrain, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await WriteSparseExtentAsync(file, sizeBytes, zeroedGrain, cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                Func<string, IHostFile> createRelated = request.CreateRelatedFile
                    ?? throw new UnsupportedFeatureException($"subformat {subformat} needs extent files next to the image, which cannot be made here", file.Path);
                long extentBytes = split ? VmdkLimits.SplitExtentBytes : sizeBytes;
                int index = 1;
                for (long done = 0; done < sizeBytes; index++)
                {
                    long piece = Math.Min(sizeBytes - done, extentBytes);
                    string extentName = split
                        ? string.Create(CultureInfo.InvariantCulture, $"{prefix}-{(flat ? 'f' : 's')}{index:000}{postfix}")
                        : $"{prefix}-flat{postfix}";
                    IHostFile extentFile = createRelated(extentName);
                    created.Add(extentFile);
                    if (flat)
                    {
                        extentFile.SetLength(piece);
                        descriptor.Extents.Add(new VmdkExtentLine("RW", piece / VmdkLimits.SectorBytes, subformat == Vmfs ? "VMFS" : "FLAT", extentName, 0));
                    }
                    else
                    {
                        await WriteSparseExtentAsync(extentFile, piece, zeroedGrain, cancellationToken).ConfigureAwait(false);
                        descriptor.Extents.Add(new VmdkExtentLine("RW", piece / VmdkLimits.SectorBytes, "SPARSE", extentName, 0));
                    }

                    await extentFile.FlushAsync(cancellationToken).ConfigureAwait(false);
                    done += piece;
                }
            }

            AddDdb(descriptor, sizeBytes, hwVersion, adapterType, toolsVersion);
            byte[] text = Encoding.UTF8.GetBytes(descriptor.Serialize());
            if (!split && !flat)
            {
                if (text.Length > (long)DescriptorSizeSectors * VmdkLimits.SectorBytes)
                {
                    throw new InvalidOptionException("the descriptor does not fit in the space a sparse VMDK reserves for it (is the backing file name very long?)", file.Path);
                }

                await file.WriteAsync((long)DescriptorOffsetSectors * VmdkLimits.SectorBytes, text, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await file.WriteAsync(0, text, cancellationToken).ConfigureAwait(false);
                file.SetLength(text.Length);
            }
        }
        finally
        {
            foreach (IHostFile extentFile in created)
            {
                extentFile.Dispose();
            }
        }
    }

    /// <summary>The ddb lines QEMU writes: hardware version, a CHS geometry (16 heads for IDE, 255 for SCSI, as VMware), adapter and tools version.</summary>
    public static void AddDdb(VmdkDescriptor descriptor, long sizeBytes, string hwVersion, string adapterType, string toolsVersion)
    {
        int heads = adapterType == "ide" ? 16 : 255;
        long cylinders = sizeBytes / (63L * heads * VmdkLimits.SectorBytes);
        descriptor.Ddb.Add(new("virtualHWVersion", hwVersion));
        descriptor.Ddb.Add(new("geometry.cylinders", cylinders.ToString(CultureInfo.InvariantCulture)));
        descriptor.Ddb.Add(new("geometry.heads", heads.ToString(CultureInfo.InvariantCulture)));
        descriptor.Ddb.Add(new("geometry.sectors", "63"));
        descriptor.Ddb.Add(new("adapterType", adapterType));
        descriptor.Ddb.Add(new("toolsVersion", toolsVersion));
    }

    /// <summary>A hosted sparse extent laid out as QEMU's vmdk_init_extent: header, room for the descriptor, the
    /// redundant directory and its tables, the directory and its tables, then grains from a grain boundary.</summary>
    public static async ValueTask WriteSparseExtentAsync(IHostFile file, long sizeBytes, bool zeroedGrain, CancellationToken cancellationToken)
    {
        long capacity = sizeBytes / VmdkLimits.SectorBytes;
        long grains = (capacity + (long)GrainSectors - 1) / (long)GrainSectors;
        long gtSectors = (GtesPerGt * sizeof(uint) + VmdkLimits.SectorBytes - 1) / VmdkLimits.SectorBytes;
        long gtCount = (grains + GtesPerGt - 1) / GtesPerGt;
        long gdSectors = ((gtCount * sizeof(uint)) + VmdkLimits.SectorBytes - 1) / VmdkLimits.SectorBytes;
        ulong rgdOffset = DescriptorOffsetSectors + DescriptorSizeSectors;
        ulong gdOffset = rgdOffset + (ulong)gdSectors + (ulong)(gtSectors * gtCount);
        ulong grainOffset = (gdOffset + (ulong)gdSectors + (ulong)(gtSectors * gtCount) + GrainSectors - 1) / GrainSectors * GrainSectors;
        var header = new VmdkSparseHeader(
            zeroedGrain ? 2u : 1u,
            VmdkSparseHeader.FlagRedundantGrainTable | VmdkSparseHeader.FlagNewLineDetect | (zeroedGrain ? VmdkSparseHeader.FlagZeroedGrain : 0),
            (ulong)capacity,
            GrainSectors,
            DescriptorOffsetSectors,
            DescriptorSizeSectors,
            GtesPerGt,
            rgdOffset,
            gdOffset,
            grainOffset,
            false,
            0);
        byte[] sector = new byte[VmdkSparseHeader.SizeBytes];
        header.Write(sector);
        await file.WriteAsync(0, sector, cancellationToken).ConfigureAwait(false);
        file.SetLength((long)grainOffset * VmdkLimits.SectorBytes);
        byte[] directory = new byte[gdSectors * VmdkLimits.SectorBytes];
        foreach (ulong directorySector in new[] { rgdOffset, gdOffset })
        {
            for (long i = 0; i < gtCount; i++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(directory.AsSpan((int)(i * sizeof(uint))), (uint)((long)directorySector + gdSectors + (i * gtSectors)));
            }

            await file.WriteAsync((long)directorySector * VmdkLimits.SectorBytes, directory, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>An empty streamOptimized extent in VMware's layout: header (directory at the end), descriptor room,
    /// then from the first grain boundary an empty directory, the footer and the end-of-stream marker.</summary>
    public static async ValueTask WriteStreamExtentAsync(IHostFile file, long sizeBytes, bool zeroedGrain, CancellationToken cancellationToken)
    {
        long capacity = sizeBytes / VmdkLimits.SectorBytes;
        long coverage = (long)GrainSectors * GtesPerGt;
        long gdEntries = (capacity + coverage - 1) / coverage;
        ulong overhead = (DescriptorOffsetSectors + DescriptorSizeSectors + GrainSectors - 1) / GrainSectors * GrainSectors;
        var header = new VmdkSparseHeader(
            3,
            VmdkSparseHeader.FlagNewLineDetect | VmdkSparseHeader.FlagCompressed | VmdkSparseHeader.FlagMarkers | (zeroedGrain ? VmdkSparseHeader.FlagZeroedGrain : 0),
            (ulong)capacity,
            GrainSectors,
            DescriptorOffsetSectors,
            DescriptorSizeSectors,
            GtesPerGt,
            0,
            VmdkSparseHeader.GdAtEnd,
            overhead,
            false,
            VmdkSparseHeader.CompressionDeflate);
        byte[] sector = new byte[VmdkSparseHeader.SizeBytes];
        header.Write(sector);
        await file.WriteAsync(0, sector, cancellationToken).ConfigureAwait(false);
        file.SetLength((long)overhead * VmdkLimits.SectorBytes);
        await VmdkSparseExtent.WriteStreamMetadataAsync(file, (long)overhead * VmdkLimits.SectorBytes, header, new uint[gdEntries], new uint[]?[gdEntries], cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask<uint> ReadParentCidAsync(IHostFile file, ImageCreateRequest request, string backingFile, CancellationToken cancellationToken)
    {
        Func<string, IHostFile> openRelated = request.OpenRelatedFile
            ?? throw new UnsupportedFeatureException("the backing file cannot be read here to take its CID", file.Path);
        using IHostFile backing = openRelated(backingFile);
        return await VmdkOpener.ReadCidAsync(backing, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOptionException($"invalid backing file format: '{backingFile}' must be a vmdk image", file.Path);
    }

    private static uint RandomCid() => BinaryPrimitives.ReadUInt32LittleEndian(RandomNumberGenerator.GetBytes(sizeof(uint)));
}
