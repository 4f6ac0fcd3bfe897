using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// An open qcow2 image: the guest-to-host mapping through L1/L2 tables, copy-on-write of partial
/// clusters from the backing chain, allocation with refcounts, zero clusters, compressed clusters
/// and extended L2 entries (subclusters), with guest data in the image file or in an external data
/// file. Metadata changes are serialized by one lock (QEMU serializes allocation with its s->lock);
/// reads of allocated data run outside it.
/// </summary>
internal sealed partial class Qcow2Image : IImage, IBackingChain, ICheckable, ICompressedWrites, IEncrypted
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly object _decompressedLock = new();
    private byte[]? _decompressed; // allocated on the first compressed read: most opens (info, check, map) never need it
    private readonly int _clusterBits;
    private readonly int _l2Bits;
    private readonly int _l2EntryBytes;
    private readonly bool _openedReadOnly;
    private ulong _decompressedDescriptor;
    private bool? _metadataPreallocated;
    private bool _decompressedValid;
    private long _compressedCursor;
    private readonly bool _ownsDataFile;
    private bool _headerFixed;

    private Qcow2Image(IHostFile file, IHostFile dataFile, bool ownsDataFile, Qcow2Header header, long[] l1, long[] refcountTable, IImage? backing, bool readOnly)
    {
        HostFile = file;
        DataFile = dataFile;
        _ownsDataFile = ownsDataFile;
        Header = header;
        L1 = l1;
        Backing = backing;
        _openedReadOnly = readOnly;
        _clusterBits = header.ClusterBits;
        _l2EntryBytes = header.ExtendedL2 ? 16 : 8;
        _l2Bits = _clusterBits - (header.ExtendedL2 ? 4 : 3);
        L2Cache = new Qcow2TableCache(file, (int)ClusterSize, Qcow2Limits.L2CacheBytes);
        Refcounts = new Qcow2Refcounts(file, _clusterBits, header.RefcountOrder, header.RefcountTableOffset, refcountTable, OnRefcountTableMovedAsync);
    }

    public string FormatName => "qcow2";

    public IHostFile HostFile { get; }

    /// <summary>Where guest clusters live: the external data file, or <see cref="HostFile"/> itself.</summary>
    public IHostFile DataFile { get; }

    /// <summary>Incompatible bit 2: data clusters are in <see cref="DataFile"/> at host offset == guest offset,
    /// without refcounts, and compressed clusters and internal snapshots are not allowed.</summary>
    public bool HasExternalDataFile => Header.Incompatible.HasFlag(Qcow2Incompatible.ExternalDataFile);

    /// <summary>Autoclear bit 1: the data file must stay a valid raw image of the disk on its own, so
    /// zeroing a range zeroes it in the data file too.</summary>
    public bool DataFileIsRaw => HasExternalDataFile && Header.Autoclear.HasFlag(Qcow2Autoclear.DataFileRaw);

    public Qcow2Header Header { get; private set; }

    public long[] L1 { get; private set; }

    public Qcow2TableCache L2Cache { get; }

    public Qcow2Refcounts Refcounts { get; }

    public IBlockDevice? Backing { get; }

    /// <summary>Persistent dirty bitmaps (empty when absent or inconsistent).</summary>
    public IReadOnlyList<Qcow2Bitmap> Bitmaps { get; private set; } = [];

    public string? BackingFileName => Header.BackingFileName;

    public string? BackingFormat => Header.BackingFormat;

    public long SizeBytes => Header.SizeBytes;

    public int Alignment => 1;

    /// <summary>Read-only when opened so, and also when the image is marked corrupt (the spec: it must
    /// not be written to, except to regain consistency, which check -r does).</summary>
    public bool IsReadOnly => _openedReadOnly || Header.Incompatible.HasFlag(Qcow2Incompatible.Corrupt);

    public long ClusterSize => 1L << _clusterBits;

    public int ClusterBits => _clusterBits;

    public long L2Entries => 1L << _l2Bits;

    public int L2EntryBytes => _l2EntryBytes;

    public bool ExtendedL2 => Header.ExtendedL2;

    public long SubclusterSize => ExtendedL2 ? ClusterSize / Qcow2L2Entry.SubclustersPerCluster : ClusterSize;

    public SemaphoreSlim MetadataLock => _lock;

    public ImageDetails Details => new(ClusterSize, Header.Incompatible.HasFlag(Qcow2Incompatible.Dirty), "qcow2", FormatSpecific(), Encrypted: IsEncrypted);

    public int CompressionUnitBytes => (int)ClusterSize;

    /// <summary>As QEMU: compressed data must come out smaller than a cluster, else the cluster is stored as it is.</summary>
    public int MaxCompressedBytes => (int)ClusterSize - 1;

    public static ValueTask<Qcow2Image> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken) =>
        OpenAsync(file, context, null, cancellationToken);

    /// <param name="createdDataFile">The external data file create has just made (the caller owns it), or null to
    /// open the one the image names.</param>
    private static async ValueTask<Qcow2Image> OpenAsync(IHostFile file, ImageOpenContext context, IHostFile? createdDataFile, CancellationToken cancellationToken)
    {
        int probe = (int)Math.Min(file.Length, 4096);
        byte[] start = new byte[Math.Max(probe, Qcow2Header.V3MinLength)];
        await file.ReadZeroFilledAsync(0, start, cancellationToken).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt32BigEndian(start) != Qcow2Header.Magic)
        {
            throw new ImageFormatException("not a qcow2 image (bad magic)", file.Path);
        }

        uint clusterBits = BinaryPrimitives.ReadUInt32BigEndian(start.AsSpan(Qcow2Header.ClusterBitsOffset));
        if (clusterBits is < Qcow2Limits.MinClusterBits or > Qcow2Limits.MaxClusterBits)
        {
            throw new ImageFormatException($"invalid cluster_bits {clusterBits}: cluster size must be 512 B to 2 MiB", file.Path);
        }

        // The header, its extensions and the backing file name all lie in the first cluster.
        byte[] first = new byte[1 << (int)clusterBits];
        int known = Math.Min(start.Length, first.Length);
        start.AsSpan(0, known).CopyTo(first);
        if (known < first.Length)
        {
            await file.ReadZeroFilledAsync(known, first.AsMemory(known), cancellationToken).ConfigureAwait(false);
        }

        Qcow2Header header = Qcow2Header.Read(first, file.Length, file.Path);
        bool readOnly = context.ReadOnly || file.IsReadOnly;
        IHostFile dataFile = file;
        if (header.Incompatible.HasFlag(Qcow2Incompatible.ExternalDataFile))
        {
            dataFile = createdDataFile ?? Qcow2DataFile.Open(file, header, context, readOnly);
        }
        else if (header.Autoclear.HasFlag(Qcow2Autoclear.DataFileRaw))
        {
            throw new ImageFormatException("the raw external data bit is set but the image has no external data file", file.Path);
        }

        bool ownsDataFile = dataFile != file && createdDataFile is null;
        try
        {
            return await OpenWithDataFileAsync(file, dataFile, ownsDataFile, header, context, readOnly, cancellationToken).ConfigureAwait(false);
        }
        catch when (ownsDataFile)
        {
            dataFile.Dispose();
            throw;
        }
    }

    private static async ValueTask<Qcow2Image> OpenWithDataFileAsync(IHostFile file, IHostFile dataFile, bool ownsDataFile, Qcow2Header header, ImageOpenContext context, bool readOnly, CancellationToken cancellationToken)
    {
        if (header.NbSnapshots > 0)
        {
            // Snapshots are kept intact (their clusters have refcounts above one, so writes copy them),
            // and their tables are validated so that a hostile table cannot mislead check.
            _ = await Qcow2Snapshots.ReadAsync(file, header, cancellationToken).ConfigureAwait(false);
        }

        long[] l1 = await ReadL1Async(file, header.L1TableOffset, header.L1Size, cancellationToken).ConfigureAwait(false);
        long[] refcountTable = await Qcow2Refcounts.ReadTableAsync(file, header.RefcountTableOffset, header.RefcountTableClusters, header.ClusterBits, cancellationToken).ConfigureAwait(false);

        IImage? backing = null;
        if (header.BackingFileName is { } backingName && context.OpenBackingAsync is { } openBacking)
        {
            try
            {
                backing = await openBacking(backingName, header.BackingFormat, cancellationToken).ConfigureAwait(false);
            }
            catch (BackingFileException)
            {
                throw;
            }
            catch (ImgToolException e)
            {
                throw BackingFileErrors.CouldNotOpen(file.Path, backingName, e);
            }
        }

        var image = new Qcow2Image(file, dataFile, ownsDataFile, header, l1, refcountTable, backing, readOnly)
        {
            Bitmaps = await Qcow2Bitmaps.ReadAsync(file, header, cancellationToken).ConfigureAwait(false),
        };
        if (header.CryptMethod == Qcow2Header.CryptMethodLuks)
        {
            try
            {
                await image.OpenEncryptionAsync(context, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                if (backing is not null)
                {
                    await backing.DisposeAsync().ConfigureAwait(false);
                }

                throw;
            }
        }
        if (!image.IsReadOnly)
        {
            await image.PrepareForWritingAsync(cancellationToken).ConfigureAwait(false);
        }

        return image;
    }

    /// <summary>Opens an image just written by create, to preallocate it; the caller keeps owning the file
    /// and the external data file, if any.</summary>
    public static ValueTask<Qcow2Image> OpenForCreateAsync(IHostFile file, IHostFile? dataFile, CancellationToken cancellationToken) =>
        OpenAsync(file, new ImageOpenContext(false, null), dataFile, cancellationToken);

    public static ValueTask<long[]> ReadL1Async(IHostFile file, long offset, int entries, CancellationToken cancellationToken) =>
        OffsetTable.ReadAsync(file, offset, entries, TableByteOrder.BigEndian, cancellationToken);

    /// <summary>
    /// Before the first write: clear autoclear bits we do not maintain (the spec requires it), and
    /// rebuild refcounts of an image left dirty by lazy refcounts (the spec: "make sure to scan L1/L2
    /// tables to repair refcounts before accessing the image").
    /// </summary>
    private async ValueTask PrepareForWritingAsync(CancellationToken cancellationToken)
    {
        if (Header.Incompatible.HasFlag(Qcow2Incompatible.Dirty))
        {
            var check = new Qcow2Check(this);
            _ = await check.RunAsync(CheckRepair.All, cancellationToken).ConfigureAwait(false);
            Header = Header with { Incompatible = Header.Incompatible & ~Qcow2Incompatible.Dirty };
            await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Once, before the first change to the image: clears autoclear bits we do not maintain and starts
    /// keeping the persistent dirty bitmaps up to date.</summary>
    private async ValueTask BeforeFirstWriteAsync(CancellationToken cancellationToken)
    {
        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException(
                Header.Incompatible.HasFlag(Qcow2Incompatible.Corrupt)
                    ? "the image is marked corrupt and must not be written; run check -r all"
                    : "the image is open read-only",
                HostFile.Path);
        }

        if (_headerFixed)
        {
            return;
        }

        Qcow2Autoclear kept = Header.Autoclear & Qcow2Autoclear.Understood;
        if (kept != Header.Autoclear)
        {
            Header = Header with { Autoclear = kept };
            await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
        }

        // Enabled bitmaps are flagged in use and tracked from here on; if one cannot be kept correct, this
        // throws and so does every later attempt to write.
        _dirtyBitmaps = await Qcow2DirtyBitmaps.StartAsync(this, cancellationToken).ConfigureAwait(false);
        _headerFixed = true;
    }

    public async ValueTask WriteHeaderAsync(CancellationToken cancellationToken)
    {
        byte[] cluster = new byte[ClusterSize];
        int used = Header.Write(cluster);
        int length = (int)Math.Min(ClusterSize, Math.Max(used, 4096));
        await HostFile.WriteAsync(0, cluster.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Marks the image corrupt (incompatible bit 1), as QEMU does when it finds metadata that would
    /// make a write destroy data; later opens are read-only until check -r all.</summary>
    public async ValueTask SetCorruptFlagAsync(bool corrupt, CancellationToken cancellationToken)
    {
        if (Header.Version < 3)
        {
            return;
        }

        Qcow2Incompatible bits = corrupt ? Header.Incompatible | Qcow2Incompatible.Corrupt : Header.Incompatible & ~Qcow2Incompatible.Corrupt;
        if (bits != Header.Incompatible)
        {
            Header = Header with { Incompatible = bits };
            await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Points the header at a rebuilt refcount table (check -r all).</summary>
    public async ValueTask ReplaceRefcountTableAsync(long offset, int clusters, CancellationToken cancellationToken)
    {
        Header = Header with { RefcountTableOffset = offset, RefcountTableClusters = clusters };
        await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask OnRefcountTableMovedAsync(long offset, int clusters, CancellationToken cancellationToken)
    {
        Header = Header with { RefcountTableOffset = offset, RefcountTableClusters = clusters };
        await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
    }

    private InfoObject FormatSpecific()
    {
        var members = new List<KeyValuePair<string, InfoValue>>
        {
            new("compat", InfoValue.Of(Header.Version >= 3 ? "1.1" : "0.10")),
            new("compression-type", InfoValue.Of(Header.CompressionType == Qcow2CompressionType.Zstd ? "zstd" : "zlib")),
        };
        if (Header.Version >= 3)
        {
            members.Add(new("lazy-refcounts", InfoValue.Of(Header.Compatible.HasFlag(Qcow2Compatible.LazyRefcounts))));
        }

        if (Bitmaps.Count > 0)
        {
            members.Add(new("bitmaps", new InfoArray([.. Bitmaps.Select(b => (InfoValue)new InfoObject(
            [
                new("flags", new InfoArray([
                    .. (b.Flags & Qcow2Bitmap.InUse) != 0 ? [InfoValue.Of("in-use")] : Array.Empty<InfoValue>(),
                    .. (b.Flags & Qcow2Bitmap.Auto) != 0 ? [InfoValue.Of("auto")] : Array.Empty<InfoValue>()])),
                new("name", InfoValue.Of(b.Name)),
                new("granularity", InfoValue.Of(1L << b.GranularityBits)),
            ]))])));
        }

        members.Add(new("refcount-bits", InfoValue.Of(Header.RefcountBits)));
        if (Luks is not null)
        {
            members.Add(new("encrypt", LuksInfo.Build(Luks)));
        }

        if (Header.ExternalDataFileName is { } dataFileName)
        {
            members.Add(new("data-file", InfoValue.Of(dataFileName)));
        }

        if (HasExternalDataFile)
        {
            members.Add(new("data-file-raw", InfoValue.Of(DataFileIsRaw)));
        }

        if (Header.Version >= 3)
        {
            members.Add(new("corrupt", InfoValue.Of(Header.Incompatible.HasFlag(Qcow2Incompatible.Corrupt))));
            members.Add(new("extended-l2", InfoValue.Of(ExtendedL2)));
        }

        return new InfoObject(members);
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (Backing is null || !IsReadOnly)
        {
            if (DataFile != HostFile)
            {
                // Data before the metadata that points at it, as QEMU flushes the data file first.
                await DataFile.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default) =>
        new Qcow2Check(this).RunAsync(repair, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StoreDirtyBitmapsAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await DisposeFilesAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask DisposeFilesAsync()
    {
        if (Backing is not null)
        {
            await Backing.DisposeAsync().ConfigureAwait(false);
        }

        if (_ownsDataFile)
        {
            DataFile.Dispose();
        }

        HostFile.Dispose();
        _lock.Dispose();
        DisposeEncryption();
    }

    private void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > SizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk ({SizeBytes} bytes)");
        }
    }

    private static ArraySegment<byte> Rent(long length) => new(ArrayPool<byte>.Shared.Rent((int)length), 0, (int)length);

    private static void Return(ArraySegment<byte> buffer) => ArrayPool<byte>.Shared.Return(buffer.Array!);
}
