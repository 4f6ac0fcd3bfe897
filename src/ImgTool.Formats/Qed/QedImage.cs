using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.Qed;

/// <summary>
/// An open QED image (docs/interop/qed_spec.rst): a fixed L1 table, L2 tables and data clusters allocated at the end
/// of the file, zero clusters, a backing file of any format. Table lookups and allocation are serialized by one lock
/// (QEMU's table_lock, and its one-allocating-write-at-a-time queue); data of allocated clusters is read and written
/// outside it, since a cluster once allocated never moves.
/// </summary>
internal sealed partial class QedImage : IImage, IBackingChain, ICheckable
{
    internal const TableByteOrder ByteOrder = TableByteOrder.LittleEndian;

    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly bool _readOnly;
    private readonly IImage? _backing;
    private bool _disposed;

    private QedImage(IHostFile file, QedHeader header, QedGeometry geometry, long[] l1, string? backingName, IImage? backing, bool readOnly)
    {
        HostFile = file;
        Header = header;
        Geometry = geometry;
        L1 = l1;
        BackingFileName = backingName;
        _backing = backing;
        _readOnly = readOnly;
        FileEnd = geometry.StartOfCluster(file.Length);
        L2Cache = new QedL2Cache(QedLimits.L2CacheBytes / (Math.Min(geometry.TableEntries, geometry.L2EntriesUsed(0)) * (long)OffsetTable.EntryBytes));
    }

    public string FormatName => "qed";

    public IHostFile HostFile { get; }

    public QedHeader Header { get; private set; }

    public QedGeometry Geometry { get; private set; }

    /// <summary>The L1 entries that map the disk (<see cref="QedGeometry.L1EntriesUsed"/>), as stored.</summary>
    internal long[] L1 { get; private set; }

    internal QedL2Cache L2Cache { get; }

    /// <summary>Where the next cluster is allocated: the file length rounded down to a cluster when opened (as QEMU's
    /// s->file_size), then grown by every allocation. Offsets at or past it are invalid.</summary>
    internal long FileEnd { get; private set; }

    internal SemaphoreSlim MetadataLock => _lock;

    public string? BackingFileName { get; }

    /// <summary>"raw" when the raw-backing bit is set; QED stores no other format name, so null means "probe".</summary>
    public string? BackingFormat => BackingFileName is not null && Header.Has(QedFeatures.BackingFormatNoProbe) ? "raw" : null;

    public IBlockDevice? Backing => _backing;

    public long SizeBytes => Geometry.ImageSizeBytes;

    public int Alignment => 1;

    public bool IsReadOnly => _readOnly;

    /// <summary>qemu-img 7.2's info prints "dirty-flag": false for QED even with the need-check bit set (observed), so
    /// we do too; <see cref="NeedsCheck"/> tells the truth.</summary>
    public ImageDetails Details => new(ClusterSizeBytes: Geometry.ClusterSize, DirtyFlag: false);

    /// <summary>The need-check bit: the image was not closed cleanly, or an allocating write is under way.</summary>
    public bool NeedsCheck => Header.Has(QedFeatures.NeedCheck);

    public static async ValueTask<QedImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken)
    {
        if (file.Length < QedHeader.SizeBytes)
        {
            throw new ImageFormatException("not a QED image (the file is shorter than the header)", file.Path);
        }

        byte[] raw = new byte[QedHeader.SizeBytes];
        await file.ReadZeroFilledAsync(0, raw, cancellationToken).ConfigureAwait(false);
        if (!QedHeader.HasMagic(raw))
        {
            throw new ImageFormatException("Image not in QED format", file.Path);
        }

        QedHeader header = QedHeader.Read(raw);
        QedGeometry geometry = QedHeaderValidation.Validate(header, file.Length, file.Path);
        string? backingName = null;
        if (header.Has(QedFeatures.BackingFile))
        {
            byte[] name = new byte[header.BackingFileNameSize];
            await file.ReadZeroFilledAsync(header.BackingFileNameOffset, name, cancellationToken).ConfigureAwait(false);
            backingName = QedHeaderValidation.DecodeBackingFileName(name, file.Path);
        }

        bool readOnly = context.ReadOnly || file.IsReadOnly;
        if (!readOnly && header.AutoclearFeatures != 0)
        {
            // The spec: unknown autoclear bits are cleared by a program that does not maintain them (there are no known ones).
            header = header with { AutoclearFeatures = 0 };
            await file.WriteAsync(0, header.ToBytes(), cancellationToken).ConfigureAwait(false);
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        long[] l1 = await OffsetTable.ReadAsync(file, (long)header.L1TableOffset, geometry.L1EntriesUsed, ByteOrder, cancellationToken).ConfigureAwait(false);
        IImage? backing = null;
        if (backingName is not null && context.OpenBackingAsync is { } openBacking)
        {
            string? format = header.Has(QedFeatures.BackingFormatNoProbe) ? "raw" : null;
            try
            {
                backing = await openBacking(backingName, format, cancellationToken).ConfigureAwait(false);
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

        var image = new QedImage(file, header, geometry, l1, backingName, backing, readOnly);
        if (!readOnly && header.Has(QedFeatures.NeedCheck) && !context.Checking)
        {
            // As QEMU's open: an image not closed cleanly is checked, and invalid entries cleared, before it is written.
            // Read-only opens skip this (nothing can be fixed, and a damaged image stays readable for recovery); so
            // does `check`, which reports what it finds itself.
            try
            {
                _ = await image.CheckAsync(CheckRepair.All, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await image.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        return image;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => HostFile.FlushAsync(cancellationToken);

    /// <summary>A clean close: data reaches the disk, then the need-check bit is cleared (QEMU's bdrv_qed_close).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            if (!_readOnly && Header.Has(QedFeatures.NeedCheck))
            {
                await HostFile.FlushAsync().ConfigureAwait(false);
                await WriteHeaderAsync(Header with { Features = Header.Features & ~QedFeatures.NeedCheck }, CancellationToken.None).ConfigureAwait(false);
                await HostFile.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (_backing is not null)
            {
                await _backing.DisposeAsync().ConfigureAwait(false);
            }

            HostFile.Dispose();
            _lock.Dispose();
        }
    }

    /// <summary>Rewrites the 64 header bytes in place; the backing name and anything else in the header clusters stay.</summary>
    internal async ValueTask WriteHeaderAsync(QedHeader header, CancellationToken cancellationToken)
    {
        await HostFile.WriteAsync(0, header.ToBytes(), cancellationToken).ConfigureAwait(false);
        Header = header;
    }

    /// <summary>Advances <see cref="FileEnd"/> past <paramref name="bytes"/> new bytes and returns where they start.</summary>
    internal long AllocateBytes(long bytes)
    {
        long start = FileEnd;
        FileEnd += bytes;
        return start;
    }

    private void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > SizeBytes || lengthBytes > SizeBytes - offsetBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk ({SizeBytes} bytes)");
        }
    }

    private void CheckWritable()
    {
        if (_readOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }
    }
}
