using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Qcow2;

/// <summary>The options `create -o` takes for qcow2, parsed and checked against each other.</summary>
internal sealed record Qcow2CreateSettings(
    int Version,
    int ClusterBits,
    int RefcountOrder,
    bool LazyRefcounts,
    bool ExtendedL2,
    Qcow2CompressionType CompressionType,
    string Preallocation,
    string? DataFile = null,
    bool DataFileRaw = false,
    LuksCreateSettings? Encryption = null)
{
    public static Qcow2CreateSettings From(ImageOptions options, bool hasBacking, string? fileName)
    {
        int version = (options.GetString("compat") ?? "1.1") switch
        {
            "0.10" or "v2" => 2,
            "1.1" or "v3" => 3,
            var other => throw new InvalidOptionException($"invalid compat '{other}': use 0.10 (v2) or 1.1 (v3)", fileName),
        };
        long clusterSize = options.GetSize("cluster_size") ?? 65536;
        if (clusterSize is < 512 or > 2 << 20 || !BitOperations.IsPow2(clusterSize))
        {
            throw new InvalidOptionException("cluster size must be a power of two between 512 and 2048k", fileName);
        }

        long refcountBits = options.GetNumber("refcount_bits") ?? 16;
        if (refcountBits is < 1 or > 64 || !BitOperations.IsPow2(refcountBits))
        {
            throw new InvalidOptionException("refcount width must be a power of two and may not exceed 64 bits", fileName);
        }

        bool lazy = options.GetBool("lazy_refcounts") ?? false;
        bool extended = options.GetBool("extended_l2") ?? false;
        string compression = options.GetString("compression_type") ?? "zlib";
        var type = compression switch
        {
            "zlib" => Qcow2CompressionType.Zlib,
            "zstd" => Qcow2CompressionType.Zstd,
            _ => throw new InvalidOptionException($"invalid compression_type '{compression}': use zlib or zstd", fileName),
        };
        if (version == 2)
        {
            if (refcountBits != 16)
            {
                throw new InvalidOptionException("different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)", fileName);
            }

            if (lazy)
            {
                throw new InvalidOptionException("lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)", fileName);
            }

            if (extended)
            {
                throw new InvalidOptionException("extended L2 entries are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)", fileName);
            }

            if (type != Qcow2CompressionType.Zlib)
            {
                throw new InvalidOptionException("compression_type requires compatibility level 1.1 or above (use compat=1.1 or greater)", fileName);
            }
        }

        if (extended && clusterSize < 16384)
        {
            throw new InvalidOptionException("extended L2 entries are only supported with cluster sizes of at least 16 KB", fileName);
        }

        string? dataFile = options.GetString("data_file");
        bool dataFileRaw = options.GetBool("data_file_raw") ?? false;
        if (dataFile is not null && version == 2)
        {
            throw new InvalidOptionException("external data files are only supported with compatibility level 1.1 and above (use compat=1.1 or greater)", fileName);
        }

        if (dataFileRaw && dataFile is null)
        {
            throw new InvalidOptionException("data-file-raw requires data-file", fileName);
        }

        if (dataFileRaw && hasBacking)
        {
            throw new InvalidOptionException("backing file and data-file-raw cannot be used at the same time", fileName);
        }

        string preallocation = options.GetString("preallocation") ?? "off";
        if (preallocation != "off" && hasBacking && !extended)
        {
            throw new InvalidOptionException("backing_file and preallocation can only be used at the same time if extended_l2 is on", fileName);
        }

        if (dataFileRaw && preallocation == "off")
        {
            // As QEMU: a raw data file must read the same with or without the metadata, so every guest
            // cluster is mapped (host = guest) from the start.
            preallocation = "metadata";
        }

        LuksCreateSettings? encryption = Qcow2EncryptionSettings.From(options, fileName);
        if (encryption is not null && dataFileRaw)
        {
            throw new InvalidOptionException("data_file_raw cannot be used with encryption: the data file would not hold the disk's bytes", fileName);
        }

        if (encryption is not null && preallocation != "off")
        {
            throw new InvalidOptionException("preallocation is not supported together with encryption", fileName);
        }

        return new Qcow2CreateSettings(version, BitOperations.Log2((ulong)clusterSize), BitOperations.Log2((ulong)refcountBits), lazy, extended, type, preallocation, dataFile, dataFileRaw, encryption);
    }
}

/// <summary>
/// Writes a new, empty qcow2 image laid out as QEMU lays it out: header cluster, refcount table,
/// refcount block(s), L1 table; every cluster of that metadata has refcount 1. With data_file, the
/// external data file is created (or emptied, as qemu-img does) at the virtual size.
/// </summary>
internal static class Qcow2Create
{
    public static async ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken)
    {
        Qcow2CreateSettings settings = Qcow2CreateSettings.From(request.Options, request.BackingFile is not null, file.Path);
        if (request.SizeBytes < 0 || request.SizeBytes > Qcow2Limits.MaxVirtualSizeBytes)
        {
            throw new InvalidOptionException($"image size {request.SizeBytes} is too large for qcow2", file.Path);
        }

        long clusterSize = 1L << settings.ClusterBits;
        long l2Entries = clusterSize / (settings.ExtendedL2 ? 16 : 8);
        long l1Size = (request.SizeBytes + (clusterSize * l2Entries) - 1) / (clusterSize * l2Entries);
        if (l1Size * 8 > Qcow2Limits.MaxL1Bytes)
        {
            throw new InvalidOptionException("the image size is too large for this cluster size (the L1 table would exceed 32 MiB); use a larger cluster_size", file.Path);
        }

        long l1Clusters = Math.Max(1, ((l1Size * 8) + clusterSize - 1) / clusterSize);
        byte[]? password = null;
        if (settings.Encryption is { } encryptionSettings)
        {
            // Resolve the secret before writing anything, so a missing one leaves no file content behind.
            password = encryptionSettings.Password(request.Secrets, file.Path);
        }

        // As QEMU: the LUKS header area gets its own clusters, right after the L1 table.
        long luksBytes = settings.Encryption is { } e ? LuksKeyStore.AreaBytes(e.Cipher.KeyBytes) : 0;
        long luksClusters = (luksBytes + clusterSize - 1) / clusterSize;
        long perBlock = clusterSize * 8 / (1L << settings.RefcountOrder);

        // Header, table, blocks and L1 must all be covered by the blocks: find the fixed point.
        long tableClusters = 1;
        long blocks = 1;
        while (true)
        {
            long total = 1 + tableClusters + blocks + l1Clusters + luksClusters;
            long neededBlocks = (total + perBlock - 1) / perBlock;
            long neededTable = ((neededBlocks * 8) + clusterSize - 1) / clusterSize;
            if (neededBlocks <= blocks && neededTable <= tableClusters)
            {
                break;
            }

            blocks = Math.Max(blocks, neededBlocks);
            tableClusters = Math.Max(tableClusters, neededTable);
        }

        long tableOffset = clusterSize;
        long blocksOffset = tableOffset + (tableClusters * clusterSize);
        long l1Offset = blocksOffset + (blocks * clusterSize);
        long luksOffset = l1Offset + (l1Clusters * clusterSize);
        long metadataClusters = 1 + tableClusters + blocks + l1Clusters + luksClusters;

        Qcow2Incompatible incompatible = Qcow2Incompatible.None;
        if (settings.ExtendedL2)
        {
            incompatible |= Qcow2Incompatible.ExtendedL2;
        }

        if (settings.CompressionType != Qcow2CompressionType.Zlib)
        {
            incompatible |= Qcow2Incompatible.CompressionType;
        }

        if (settings.DataFile is not null)
        {
            incompatible |= Qcow2Incompatible.ExternalDataFile;
        }

        var header = new Qcow2Header
        {
            Version = settings.Version,
            ClusterBits = settings.ClusterBits,
            SizeBytes = request.SizeBytes,
            L1Size = (int)l1Size,
            L1TableOffset = l1Offset,
            RefcountTableOffset = tableOffset,
            RefcountTableClusters = (int)tableClusters,
            Incompatible = incompatible,
            Compatible = settings.LazyRefcounts ? Qcow2Compatible.LazyRefcounts : Qcow2Compatible.None,
            Autoclear = settings.DataFileRaw ? Qcow2Autoclear.DataFileRaw : Qcow2Autoclear.None,
            RefcountOrder = settings.RefcountOrder,
            HeaderLength = settings.Version >= 3 ? Qcow2Header.V3Length : Qcow2Header.V2Length,
            CompressionType = settings.CompressionType,
            BackingFileName = request.BackingFile,
        };
        if (request.BackingFile is not null && request.BackingFormat is { } backingFormat)
        {
            header = header.WithExtension(Qcow2HeaderExtension.BackingFormat, Encoding.UTF8.GetBytes(backingFormat));
        }

        if (settings.DataFile is { } dataFileName)
        {
            header = header.WithExtension(Qcow2HeaderExtension.ExternalDataFile, Encoding.UTF8.GetBytes(dataFileName));
        }

        if (settings.Encryption is not null)
        {
            byte[] pointer = new byte[16];
            BinaryPrimitives.WriteInt64BigEndian(pointer, luksOffset);
            BinaryPrimitives.WriteInt64BigEndian(pointer.AsSpan(8), luksBytes);
            header = header.WithExtension(Qcow2HeaderExtension.FullDiskEncryption, pointer) with { CryptMethod = Qcow2Header.CryptMethodLuks };
        }

        if (settings.Version >= 3)
        {
            // The table is optional: like QEMU, leave it out when it does not fit in a small first cluster.
            Qcow2Header withTable = header.WithExtension(Qcow2HeaderExtension.FeatureNameTable, Qcow2Header.DefaultFeatureNameTable());
            header = withTable.SerializedLength <= clusterSize ? withTable : header;
        }

        byte[] first = new byte[clusterSize];
        header.Write(first);
        await file.WriteAsync(0, first, cancellationToken).ConfigureAwait(false);

        byte[] table = new byte[tableClusters * clusterSize];
        for (long b = 0; b < blocks; b++)
        {
            BinaryPrimitives.WriteInt64BigEndian(table.AsSpan((int)(b * 8)), blocksOffset + (b * clusterSize));
        }

        await file.WriteAsync(tableOffset, table, cancellationToken).ConfigureAwait(false);
        byte[] block = new byte[clusterSize];
        for (long b = 0; b < blocks; b++)
        {
            Array.Clear(block);
            for (long k = 0; k < perBlock; k++)
            {
                long cluster = (b * perBlock) + k;
                if (cluster < metadataClusters)
                {
                    Qcow2Refcounts.WriteEntry(block, k, settings.RefcountOrder, 1);
                }
            }

            await file.WriteAsync(blocksOffset + (b * clusterSize), block, cancellationToken).ConfigureAwait(false);
        }

        await file.WriteAsync(l1Offset, new byte[l1Clusters * clusterSize], cancellationToken).ConfigureAwait(false);
        if (settings.Encryption is { } encryption)
        {
            file.SetLength(luksOffset + (luksClusters * clusterSize));
            (_, byte[] masterKey) = await LuksKeyStore.CreateAsync(
                encryption.Cipher, encryption.Hash, password!, encryption.IterTimeMs,
                (offset, data, ct) => file.WriteAsync(luksOffset + offset, data, ct), file.Path, cancellationToken).ConfigureAwait(false);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(masterKey);
        }

        using IHostFile? dataFile = settings.DataFile is { } name ? CreateDataFile(file, name, request) : null;
        dataFile?.SetLength(request.SizeBytes);
        if (settings.Preallocation != "off")
        {
            await PreallocateAsync(file, dataFile, settings, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Creates (or empties, as qemu-img does) the external data file, sized to the disk by the caller.</summary>
    private static IHostFile CreateDataFile(IHostFile file, string name, ImageCreateRequest request)
    {
        Qcow2DataFile.CheckName(name, file.Path, request.AllowOutsideFiles);
        Func<string, IHostFile> create = request.CreateRelatedFile
            ?? throw new UnsupportedFeatureException($"the external data file '{name}' cannot be created here (no folder)", file.Path);
        return create(name);
    }

    /// <summary>preallocation=metadata|falloc|full: every guest cluster gets an L2 entry and a host cluster
    /// (which reads as zeros); falloc and full then allocate the file space itself (in the external data
    /// file when there is one).</summary>
    private static async ValueTask PreallocateAsync(IHostFile file, IHostFile? dataFile, Qcow2CreateSettings settings, CancellationToken cancellationToken)
    {
        Qcow2Image image = await Qcow2Image.OpenForCreateAsync(file, dataFile, cancellationToken).ConfigureAwait(false);
        long dataStart = await image.PreallocateMetadataAsync(cancellationToken).ConfigureAwait(false);
        IHostFile data = dataFile ?? file;
        long end = data.Length;
        if (settings.Preallocation is "falloc" or "full")
        {
            data.Preallocate(dataStart, end - dataStart, writeZeros: settings.Preallocation == "full");
        }
    }
}
