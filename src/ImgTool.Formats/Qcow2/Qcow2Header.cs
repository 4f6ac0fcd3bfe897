using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qcow2;

/// <summary>Incompatible feature bits (docs/interop/qcow2.txt, header bytes 72-79).</summary>
[Flags]
internal enum Qcow2Incompatible : ulong
{
    None = 0,
    Dirty = 1 << 0,
    Corrupt = 1 << 1,
    ExternalDataFile = 1 << 2,
    CompressionType = 1 << 3,
    ExtendedL2 = 1 << 4,
    Known = Dirty | Corrupt | ExternalDataFile | CompressionType | ExtendedL2,
}

/// <summary>Compatible feature bits (header bytes 80-87).</summary>
[Flags]
internal enum Qcow2Compatible : ulong
{
    None = 0,
    LazyRefcounts = 1 << 0,
}

/// <summary>Autoclear feature bits (header bytes 88-95).</summary>
[Flags]
internal enum Qcow2Autoclear : ulong
{
    None = 0,
    Bitmaps = 1 << 0,
    DataFileRaw = 1 << 1,

    /// <summary>The bits this implementation keeps when it writes. Bitmaps stay consistent because we
    /// mark each one in use (inconsistent) before the first write, as QEMU does while it writes.</summary>
    Understood = Bitmaps | DataFileRaw,
}

internal enum Qcow2CompressionType : byte
{
    Zlib = 0,
    Zstd = 1,
}

/// <summary>One header extension exactly as stored (type and data, without padding).</summary>
internal sealed record Qcow2HeaderExtension(uint Type, byte[] Data)
{
    public const uint End = 0x00000000;
    public const uint BackingFormat = 0xe2792aca;
    public const uint FeatureNameTable = 0x6803f857;
    public const uint Bitmaps = 0x23852875;
    public const uint FullDiskEncryption = 0x0537be77;
    public const uint ExternalDataFile = 0x44415441;
}

/// <summary>
/// The qcow2 header (docs/interop/qcow2.txt, "Header"), its header extensions and the backing file
/// name. Parse and serialize only; no I/O. Unknown extensions and additional fields are kept.
/// </summary>
internal sealed record Qcow2Header
{
    public const uint Magic = 0x514649fb; // "QFI\xfb"

    /// <summary>crypt_method values (header bytes 32-35).</summary>
    public const uint CryptMethodNone = 0;
    public const uint CryptMethodAes = 1;
    public const uint CryptMethodLuks = 2;

    // Field offsets, each derived from the one before it, as the spec lists them.
    public const int MagicOffset = 0;
    public const int VersionOffset = MagicOffset + 4;
    public const int BackingFileOffsetOffset = VersionOffset + 4;
    public const int BackingFileSizeOffset = BackingFileOffsetOffset + 8;
    public const int ClusterBitsOffset = BackingFileSizeOffset + 4;
    public const int SizeOffset = ClusterBitsOffset + 4;
    public const int CryptMethodOffset = SizeOffset + 8;
    public const int L1SizeOffset = CryptMethodOffset + 4;
    public const int L1TableOffsetOffset = L1SizeOffset + 4;
    public const int RefcountTableOffsetOffset = L1TableOffsetOffset + 8;
    public const int RefcountTableClustersOffset = RefcountTableOffsetOffset + 8;
    public const int NbSnapshotsOffset = RefcountTableClustersOffset + 4;
    public const int SnapshotsOffsetOffset = NbSnapshotsOffset + 4;
    public const int V2Length = SnapshotsOffsetOffset + 8; // 72
    public const int IncompatibleFeaturesOffset = V2Length;
    public const int CompatibleFeaturesOffset = IncompatibleFeaturesOffset + 8;
    public const int AutoclearFeaturesOffset = CompatibleFeaturesOffset + 8;
    public const int RefcountOrderOffset = AutoclearFeaturesOffset + 8;
    public const int HeaderLengthOffset = RefcountOrderOffset + 4;
    public const int V3MinLength = HeaderLengthOffset + 4; // 104
    public const int CompressionTypeOffset = V3MinLength;

    /// <summary>What we write for v3: up to compression_type, padded to a multiple of 8 (as QEMU writes).</summary>
    public const int V3Length = CompressionTypeOffset + 8; // 112

    public int Version { get; init; } = 3;
    public long BackingFileOffset { get; init; }
    public int BackingFileSize { get; init; }
    public int ClusterBits { get; init; } = 16;
    public long SizeBytes { get; init; }
    public uint CryptMethod { get; init; }
    public int L1Size { get; init; }
    public long L1TableOffset { get; init; }
    public long RefcountTableOffset { get; init; }
    public int RefcountTableClusters { get; init; }
    public int NbSnapshots { get; init; }
    public long SnapshotsOffset { get; init; }
    public Qcow2Incompatible Incompatible { get; init; }
    public Qcow2Compatible Compatible { get; init; }
    public Qcow2Autoclear Autoclear { get; init; }
    public int RefcountOrder { get; init; } = 4;
    public int HeaderLength { get; init; } = V3Length;
    public Qcow2CompressionType CompressionType { get; init; }

    /// <summary>Additional v3 header bytes beyond compression_type that we do not know, kept as they were.</summary>
    public byte[] ExtraHeaderFields { get; init; } = [];

    public IReadOnlyList<Qcow2HeaderExtension> Extensions { get; init; } = [];

    public string? BackingFileName { get; init; }

    public long ClusterSize => 1L << ClusterBits;

    public int RefcountBits => 1 << RefcountOrder;

    public bool ExtendedL2 => Incompatible.HasFlag(Qcow2Incompatible.ExtendedL2);

    public string? BackingFormat => ExtensionString(Qcow2HeaderExtension.BackingFormat);

    public string? ExternalDataFileName => ExtensionString(Qcow2HeaderExtension.ExternalDataFile);

    public string? ExtensionString(uint type) =>
        Extensions.FirstOrDefault(e => e.Type == type) is { } ext ? Encoding.UTF8.GetString(ext.Data) : null;

    public Qcow2Header WithExtension(uint type, byte[]? data)
    {
        var list = Extensions.Where(e => e.Type != type).ToList();
        if (data is not null)
        {
            list.Add(new Qcow2HeaderExtension(type, data));
        }

        return this with { Extensions = list };
    }

    /// <summary>Parses and validates the header found in the first cluster (or the first bytes of the file).</summary>
    /// <param name="head">The start of the file: at least the header and its extensions and backing name.</param>
    public static Qcow2Header Read(ReadOnlySpan<byte> head, long fileLength, string fileName)
    {
        if (head.Length < V2Length || BinaryPrimitives.ReadUInt32BigEndian(head[MagicOffset..]) != Magic)
        {
            throw new ImageFormatException("not a qcow2 image (bad magic)", fileName);
        }

        uint version = BinaryPrimitives.ReadUInt32BigEndian(head[VersionOffset..]);
        if (version is not (2 or 3))
        {
            throw new UnsupportedFeatureException($"qcow2 version {version} is not supported (only 2 and 3)", fileName);
        }

        uint clusterBits = BinaryPrimitives.ReadUInt32BigEndian(head[ClusterBitsOffset..]);
        if (clusterBits is < Qcow2Limits.MinClusterBits or > Qcow2Limits.MaxClusterBits)
        {
            throw new ImageFormatException($"invalid cluster_bits {clusterBits}: cluster size must be 512 B to 2 MiB", fileName);
        }

        long size = BinaryPrimitives.ReadInt64BigEndian(head[SizeOffset..]);
        if (size < 0 || size > Qcow2Limits.MaxVirtualSizeBytes)
        {
            throw new ImageFormatException($"invalid virtual size {(ulong)size}", fileName);
        }

        var header = new Qcow2Header
        {
            Version = (int)version,
            BackingFileOffset = BinaryPrimitives.ReadInt64BigEndian(head[BackingFileOffsetOffset..]),
            BackingFileSize = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(head[BackingFileSizeOffset..]), int.MaxValue),
            ClusterBits = (int)clusterBits,
            SizeBytes = size,
            CryptMethod = BinaryPrimitives.ReadUInt32BigEndian(head[CryptMethodOffset..]),
            L1Size = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(head[L1SizeOffset..]), int.MaxValue),
            L1TableOffset = BinaryPrimitives.ReadInt64BigEndian(head[L1TableOffsetOffset..]),
            RefcountTableOffset = BinaryPrimitives.ReadInt64BigEndian(head[RefcountTableOffsetOffset..]),
            RefcountTableClusters = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(head[RefcountTableClustersOffset..]), int.MaxValue),
            NbSnapshots = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(head[NbSnapshotsOffset..]), int.MaxValue),
            SnapshotsOffset = BinaryPrimitives.ReadInt64BigEndian(head[SnapshotsOffsetOffset..]),
            HeaderLength = V2Length,
            RefcountOrder = 4,
        };

        long clusterSize = 1L << (int)clusterBits;
        if (version >= 3)
        {
            if (head.Length < V3MinLength)
            {
                throw new ImageFormatException("qcow2 v3 header is truncated", fileName);
            }

            uint headerLength = BinaryPrimitives.ReadUInt32BigEndian(head[HeaderLengthOffset..]);
            if (headerLength < V3MinLength || headerLength % 8 != 0 || headerLength > Math.Min(clusterSize, head.Length))
            {
                throw new ImageFormatException($"invalid header_length {headerLength}", fileName);
            }

            uint refcountOrder = BinaryPrimitives.ReadUInt32BigEndian(head[RefcountOrderOffset..]);
            if (refcountOrder > Qcow2Limits.MaxRefcountOrder)
            {
                throw new ImageFormatException($"invalid refcount_order {refcountOrder} (at most {Qcow2Limits.MaxRefcountOrder})", fileName);
            }

            var incompatible = (Qcow2Incompatible)BinaryPrimitives.ReadUInt64BigEndian(head[IncompatibleFeaturesOffset..]);
            header = header with
            {
                Incompatible = incompatible,
                Compatible = (Qcow2Compatible)BinaryPrimitives.ReadUInt64BigEndian(head[CompatibleFeaturesOffset..]),
                Autoclear = (Qcow2Autoclear)BinaryPrimitives.ReadUInt64BigEndian(head[AutoclearFeaturesOffset..]),
                RefcountOrder = (int)refcountOrder,
                HeaderLength = (int)headerLength,
                CompressionType = headerLength > CompressionTypeOffset ? (Qcow2CompressionType)head[CompressionTypeOffset] : Qcow2CompressionType.Zlib,
                ExtraHeaderFields = headerLength > CompressionTypeOffset + 1 ? head[(CompressionTypeOffset + 1)..(int)headerLength].ToArray() : [],
            };
        }

        header = header with { Extensions = ReadExtensions(head, header, fileName) };
        header.Validate(fileLength, fileName);

        // An empty name is no backing file (QEMU reads it as "" and opens nothing).
        if (header.BackingFileOffset != 0 && header.BackingFileSize > 0)
        {
            header = header with { BackingFileName = Encoding.UTF8.GetString(head.Slice((int)header.BackingFileOffset, header.BackingFileSize)) };
        }

        return header;
    }

    private static List<Qcow2HeaderExtension> ReadExtensions(ReadOnlySpan<byte> head, Qcow2Header header, string fileName)
    {
        var extensions = new List<Qcow2HeaderExtension>();
        long end = header.BackingFileOffset != 0 ? Math.Min(header.BackingFileOffset, header.ClusterSize) : header.ClusterSize;
        end = Math.Min(end, head.Length);
        int position = header.HeaderLength;
        while (position + 8 <= end)
        {
            uint type = BinaryPrimitives.ReadUInt32BigEndian(head[position..]);
            uint length = BinaryPrimitives.ReadUInt32BigEndian(head[(position + 4)..]);
            if (type == Qcow2HeaderExtension.End)
            {
                break;
            }

            if (length > end - position - 8)
            {
                throw new ImageFormatException($"header extension 0x{type:x8} at offset {position} runs past the end of the first cluster", fileName);
            }

            extensions.Add(new Qcow2HeaderExtension(type, head.Slice(position + 8, (int)length).ToArray()));
            position += 8 + (int)((length + 7) & ~7u);
        }

        return extensions;
    }

    private void Validate(long fileLength, string fileName)
    {
        long clusterSize = ClusterSize;
        if (Version == 2 && ((ulong)Incompatible | (ulong)Compatible | (ulong)Autoclear) != 0)
        {
            throw new ImageFormatException("qcow2 v2 header has feature bits", fileName);
        }

        ulong unknown = (ulong)(Incompatible & ~Qcow2Incompatible.Known);
        if (unknown != 0)
        {
            throw new UnsupportedFeatureException($"unsupported qcow2 feature(s): {DescribeIncompatible(unknown)}", fileName);
        }

        if (CryptMethod == CryptMethodAes)
        {
            throw new UnsupportedFeatureException("legacy AES-CBC encrypted qcow2 images (crypt_method 1) are not supported; convert them with qemu-img to LUKS encryption", fileName);
        }

        if (CryptMethod is not (CryptMethodNone or CryptMethodLuks))
        {
            throw new ImageFormatException($"invalid encryption method {CryptMethod}", fileName);
        }

        if (CryptMethod == CryptMethodLuks && Extensions.All(e => e.Type != Qcow2HeaderExtension.FullDiskEncryption))
        {
            throw new ImageFormatException("LUKS encrypted image has no full disk encryption header extension", fileName);
        }

        if (Incompatible.HasFlag(Qcow2Incompatible.CompressionType) != (CompressionType != Qcow2CompressionType.Zlib))
        {
            throw new ImageFormatException("compression type bit and compression_type field disagree", fileName);
        }

        if (CompressionType is not (Qcow2CompressionType.Zlib or Qcow2CompressionType.Zstd))
        {
            throw new UnsupportedFeatureException($"unknown compression type {(int)CompressionType}", fileName);
        }

        if (ExtendedL2 && ClusterBits < Qcow2Limits.MinExtendedL2ClusterBits)
        {
            throw new ImageFormatException("extended L2 entries need clusters of at least 16 KiB", fileName);
        }

        if ((long)L1Size * 8 > Qcow2Limits.MaxL1Bytes)
        {
            throw new ImageFormatException($"L1 table is too large ({L1Size} entries; at most {Qcow2Limits.MaxL1Bytes / 8})", fileName);
        }

        long entriesPerL2 = clusterSize / (ExtendedL2 ? 16 : 8);
        if (SizeBytes > (long)L1Size * entriesPerL2 * clusterSize)
        {
            throw new ImageFormatException($"L1 table ({L1Size} entries) is too small for the virtual size {SizeBytes}", fileName);
        }

        CheckTableOffset(L1TableOffset, (long)L1Size * 8, "L1 table", L1Size != 0);
        if (RefcountTableClusters == 0 || RefcountTableClusters * clusterSize > Qcow2Limits.MaxRefcountTableBytes)
        {
            throw new ImageFormatException($"invalid refcount table size ({RefcountTableClusters} clusters)", fileName);
        }

        CheckTableOffset(RefcountTableOffset, RefcountTableClusters * clusterSize, "refcount table", true);
        if (NbSnapshots > Qcow2Limits.MaxSnapshots)
        {
            throw new ImageFormatException($"too many snapshots ({NbSnapshots}; at most {Qcow2Limits.MaxSnapshots})", fileName);
        }

        CheckTableOffset(SnapshotsOffset, 1, "snapshot table", NbSnapshots != 0);

        if (BackingFileOffset != 0)
        {
            if (BackingFileSize > Qcow2Limits.MaxBackingFileNameBytes || BackingFileOffset < 0
                || BackingFileOffset + BackingFileSize > clusterSize)
            {
                throw new ImageFormatException("backing file name is too long or lies outside the first cluster", fileName);
            }
        }

        void CheckTableOffset(long offset, long length, string what, bool present)
        {
            if (!present)
            {
                return;
            }

            if (offset <= 0 || offset % clusterSize != 0 || offset > Qcow2Limits.MaxHostOffset)
            {
                throw new ImageFormatException($"{what} offset {offset} is invalid (zero, negative or not cluster-aligned)", fileName);
            }

            if (offset + length > fileLength)
            {
                throw new ImageFormatException($"{what} at offset {offset} lies beyond the end of the file ({fileLength} bytes)", fileName);
            }
        }
    }

    private string DescribeIncompatible(ulong bits)
    {
        var names = new List<string>();
        byte[]? table = Extensions.FirstOrDefault(e => e.Type == Qcow2HeaderExtension.FeatureNameTable)?.Data;
        for (int bit = 0; bit < 64; bit++)
        {
            if ((bits & (1UL << bit)) == 0)
            {
                continue;
            }

            string? name = null;
            for (int i = 0; table is not null && i + 48 <= table.Length; i += 48)
            {
                if (table[i] == 0 && table[i + 1] == bit)
                {
                    name = Encoding.UTF8.GetString(table.AsSpan(i + 2, 46)).TrimEnd('\0');
                }
            }

            names.Add(name ?? $"unknown incompatible feature bit {bit}");
        }

        return string.Join(", ", names);
    }

    /// <summary>The bytes <see cref="Write"/> uses: header, extensions with padding, the end marker, the backing file name.</summary>
    public int SerializedLength =>
        (Version >= 3 ? Math.Max(HeaderLength, V3Length) : V2Length)
        + Extensions.Sum(e => 8 + ((e.Data.Length + 7) & ~7))
        + 8
        + (BackingFileName is { } backing ? Encoding.UTF8.GetByteCount(backing) : 0);

    /// <summary>Serializes header, extensions and backing file name into the start of the first cluster.</summary>
    /// <returns>The number of bytes used.</returns>
    public int Write(Span<byte> cluster)
    {
        cluster.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(cluster[MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32BigEndian(cluster[VersionOffset..], (uint)Version);
        BinaryPrimitives.WriteUInt32BigEndian(cluster[ClusterBitsOffset..], (uint)ClusterBits);
        BinaryPrimitives.WriteInt64BigEndian(cluster[SizeOffset..], SizeBytes);
        BinaryPrimitives.WriteUInt32BigEndian(cluster[CryptMethodOffset..], CryptMethod);
        BinaryPrimitives.WriteUInt32BigEndian(cluster[L1SizeOffset..], (uint)L1Size);
        BinaryPrimitives.WriteInt64BigEndian(cluster[L1TableOffsetOffset..], L1TableOffset);
        BinaryPrimitives.WriteInt64BigEndian(cluster[RefcountTableOffsetOffset..], RefcountTableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(cluster[RefcountTableClustersOffset..], (uint)RefcountTableClusters);
        BinaryPrimitives.WriteUInt32BigEndian(cluster[NbSnapshotsOffset..], (uint)NbSnapshots);
        BinaryPrimitives.WriteInt64BigEndian(cluster[SnapshotsOffsetOffset..], SnapshotsOffset);
        int position = V2Length;
        if (Version >= 3)
        {
            BinaryPrimitives.WriteUInt64BigEndian(cluster[IncompatibleFeaturesOffset..], (ulong)Incompatible);
            BinaryPrimitives.WriteUInt64BigEndian(cluster[CompatibleFeaturesOffset..], (ulong)Compatible);
            BinaryPrimitives.WriteUInt64BigEndian(cluster[AutoclearFeaturesOffset..], (ulong)Autoclear);
            BinaryPrimitives.WriteUInt32BigEndian(cluster[RefcountOrderOffset..], (uint)RefcountOrder);
            int length = Math.Max(HeaderLength, V3Length);
            BinaryPrimitives.WriteUInt32BigEndian(cluster[HeaderLengthOffset..], (uint)length);
            cluster[CompressionTypeOffset] = (byte)CompressionType;
            ExtraHeaderFields.CopyTo(cluster[(CompressionTypeOffset + 1)..]);
            position = length;
        }

        foreach (Qcow2HeaderExtension extension in Extensions)
        {
            int padded = (extension.Data.Length + 7) & ~7;
            if (position + 8 + padded + 8 > cluster.Length)
            {
                throw new UnsupportedFeatureException("header extensions do not fit in the first cluster");
            }

            BinaryPrimitives.WriteUInt32BigEndian(cluster[position..], extension.Type);
            BinaryPrimitives.WriteUInt32BigEndian(cluster[(position + 4)..], (uint)extension.Data.Length);
            extension.Data.CopyTo(cluster[(position + 8)..]);
            position += 8 + padded;
        }

        position += 8; // the end-of-extensions marker (type 0, length 0)
        if (BackingFileName is { } backing)
        {
            int count = Encoding.UTF8.GetByteCount(backing);
            if (count > Qcow2Limits.MaxBackingFileNameBytes || position + count > cluster.Length)
            {
                throw new UnsupportedFeatureException("backing file name is too long");
            }

            Encoding.UTF8.GetBytes(backing, cluster[position..]);
            BinaryPrimitives.WriteInt64BigEndian(cluster[BackingFileOffsetOffset..], position);
            BinaryPrimitives.WriteUInt32BigEndian(cluster[BackingFileSizeOffset..], (uint)count);
            position += count;
        }

        return position;
    }

    /// <summary>The feature name table QEMU writes, so older readers can name what they refuse.</summary>
    public static byte[] DefaultFeatureNameTable()
    {
        (byte Type, byte Bit, string Name)[] features =
        [
            (0, 0, "dirty bit"),
            (0, 1, "corrupt bit"),
            (0, 2, "external data file"),
            (0, 3, "compression type"),
            (0, 4, "extended L2 entries"),
            (1, 0, "lazy refcounts"),
            (2, 0, "bitmaps"),
            (2, 1, "raw external data"),
        ];
        byte[] table = new byte[features.Length * 48];
        for (int i = 0; i < features.Length; i++)
        {
            table[i * 48] = features[i].Type;
            table[(i * 48) + 1] = features[i].Bit;
            Encoding.ASCII.GetBytes(features[i].Name, table.AsSpan((i * 48) + 2));
        }

        return table;
    }
}
