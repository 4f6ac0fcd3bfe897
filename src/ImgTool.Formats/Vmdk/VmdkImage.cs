using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.Vmdk;

/// <summary>Where the descriptor text lives: embedded in a sparse extent (a fixed sector range) or as a whole file.</summary>
internal sealed record VmdkDescriptorPlace(long OffsetBytes, long CapacityBytes, bool IsWholeFile);

/// <summary>
/// An opened VMDK: its descriptor, its extents in disk order, and its parent for a delta disk. Requests are split at
/// extent boundaries; unallocated grains read from the parent (after checking that the parent's CID is the
/// parentCID this disk was made against, as VMware and QEMU do).
/// </summary>
internal partial class VmdkImage : IImage, IBackingChain, ICheckable
{
    private readonly VmdkExtent[] _extents;
    private readonly long[] _starts;
    private readonly VmdkDescriptorPlace _descriptorPlace;
    private readonly SemaphoreSlim _cidLock = new(1, 1);
    private string _descriptorText;
    private bool _cidUpdated;
    private bool _parentChecked;

    public VmdkImage(IHostFile hostFile, VmdkDescriptor descriptor, string descriptorText, VmdkDescriptorPlace descriptorPlace, IReadOnlyList<VmdkExtent> extents, string createType, IImage? backing, bool readOnly)
    {
        HostFile = hostFile;
        Descriptor = descriptor;
        _descriptorText = descriptorText;
        _descriptorPlace = descriptorPlace;
        _extents = [.. extents];
        _starts = [.. extents.Select(e => e.StartBytes)];
        CreateType = createType;
        Backing = backing;
        IsReadOnly = readOnly;
        SizeBytes = extents.Count == 0 ? 0 : extents[^1].StartBytes + extents[^1].SizeBytes;
        Cid = descriptor.Cid;
    }

    public string FormatName => "vmdk";

    public IHostFile HostFile { get; }

    public VmdkDescriptor Descriptor { get; }

    public string CreateType { get; }

    public uint Cid { get; private set; }

    public IReadOnlyList<VmdkExtent> Extents => _extents;

    public long SizeBytes { get; }

    public int Alignment => 1;

    public bool IsReadOnly { get; }

    public string? BackingFileName => Descriptor.ParentFileNameHint;

    public string? BackingFormat => Descriptor.ParentFileNameHint is null ? null : "vmdk";

    public IBlockDevice? Backing { get; }

    public ImageDetails Details
    {
        get
        {
            VmdkExtent first = _extents[0];
            bool uniform = _extents.All(e => e.IsFlat == first.IsFlat && e.IsCompressed == first.IsCompressed && (e.IsFlat || e.GrainBytes == first.GrainBytes));
            var extents = new List<InfoValue>();
            foreach (VmdkExtent extent in _extents)
            {
                var members = new List<KeyValuePair<string, InfoValue>>();
                if (extent.IsCompressed)
                {
                    members.Add(new("compressed", InfoValue.Of(true)));
                }

                members.Add(new("virtual-size", InfoValue.Of(extent.SizeBytes)));
                if (extent.FileName is { } extentFileName)
                {
                    members.Add(new("filename", InfoValue.Of(extentFileName)));
                }

                if (!extent.IsFlat)
                {
                    members.Add(new("cluster-size", InfoValue.Of(extent.GrainBytes)));
                }

                members.Add(new("format", InfoValue.Of(extent.Type)));
                extents.Add(new InfoObject(members));
            }

            var data = new InfoObject(
            [
                new("cid", InfoValue.Of((long)Cid)),
                new("parent-cid", InfoValue.Of((long)Descriptor.ParentCid)),
                new("create-type", InfoValue.Of(CreateType)),
                new("extents", new InfoArray(extents)),
            ]);
            long allocated = HostFile.AllocatedBytes + _extents.Where(e => e.File != HostFile).Sum(e => e.File.AllocatedBytes);
            return new ImageDetails(
                uniform && !first.IsFlat ? first.GrainBytes : null,
                false,
                "vmdk",
                data,
                ActualSizeBytes: allocated,
                Subformat: CreateType,
                AdapterType: Descriptor.GetDdb("adapterType"));
        }
    }

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        int done = 0;
        while (done < buffer.Length)
        {
            long position = offsetBytes + done;
            VmdkExtent extent = Find(position);
            long local = position - extent.StartBytes;
            VmdkRun run = await extent.MapAsync(local, Math.Min(buffer.Length - done, extent.SizeBytes - local), cancellationToken).ConfigureAwait(false);
            int piece = (int)Math.Min(run.LengthBytes, buffer.Length - done);
            Memory<byte> part = buffer.Slice(done, piece);
            switch (run.Kind)
            {
                case VmdkRunKind.Data:
                    await extent.ReadDataAsync(local, part, run, cancellationToken).ConfigureAwait(false);
                    break;
                case VmdkRunKind.Zero:
                    part.Span.Clear();
                    break;
                default:
                    await ReadBackingAsync(position, part, cancellationToken).ConfigureAwait(false);
                    break;
            }

            done += piece;
        }
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckWritable(offsetBytes, buffer.Length);
        CheckExtentAccess(offsetBytes, buffer.Length, buffer);
        await UpdateCidAsync(cancellationToken).ConfigureAwait(false);
        int done = 0;
        while (done < buffer.Length)
        {
            long position = offsetBytes + done;
            VmdkExtent extent = Find(position);
            long local = position - extent.StartBytes;
            int piece = (int)Math.Min(buffer.Length - done, extent.SizeBytes - local);
            await extent.WriteAsync(local, buffer.Slice(done, piece), ReadBackingAsync, cancellationToken).ConfigureAwait(false);
            done += piece;
        }
    }

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        CheckWritable(offsetBytes, lengthBytes);
        CheckExtentAccess(offsetBytes, lengthBytes, null);
        await UpdateCidAsync(cancellationToken).ConfigureAwait(false);
        for (long done = 0; done < lengthBytes;)
        {
            long position = offsetBytes + done;
            VmdkExtent extent = Find(position);
            long local = position - extent.StartBytes;
            long piece = Math.Min(lengthBytes - done, extent.SizeBytes - local);
            await extent.WriteZeroesAsync(local, piece, flags, Backing is not null, ReadBackingAsync, cancellationToken).ConfigureAwait(false);
            done += piece;
        }
    }

    /// <summary>A hint only: VMDK has no way to free a grain, so the data stays (a valid answer, as in QEMU).</summary>
    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (IsReadOnly)
        {
            return;
        }

        foreach (VmdkExtent extent in _extents)
        {
            await extent.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, 1);
        VmdkExtent extent = Find(offsetBytes);
        long local = offsetBytes - extent.StartBytes;
        VmdkRun run = await extent.MapAsync(local, Math.Min(lengthBytes, extent.SizeBytes - local), cancellationToken).ConfigureAwait(false);
        long length = Math.Max(1, Math.Min(run.LengthBytes, lengthBytes));
        return run.Kind switch
        {
            // Data in another extent file is mapped to that file, named as qemu-img names it.
            VmdkRunKind.Data => new BlockStatus(
                BlockStatusKind.Data,
                length,
                run.Compressed ? -1 : run.HostOffsetBytes,
                HostFileName: run.Compressed || extent.File == HostFile ? null : extent.File.Path),
            // A hole in a flat extent file: QEMU reports the extent's data as data that reads as zeros.
            VmdkRunKind.Zero when extent.IsFlat && extent is not VmdkZeroExtent => new BlockStatus(
                BlockStatusKind.Data,
                length,
                run.HostOffsetBytes,
                HostFileName: extent.File == HostFile ? null : extent.File.Path,
                DataIsHostHole: true),
            VmdkRunKind.Zero => new BlockStatus(BlockStatusKind.Zero, length),
            _ => new BlockStatus(BlockStatusKind.Unallocated, length, Allocated: false),
        };
    }

    public async ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default)
    {
        var findings = new List<CheckFinding>();
        foreach (VmdkExtent extent in _extents)
        {
            await extent.CheckAsync(findings, cancellationToken).ConfigureAwait(false);
        }

        return new CheckReport
        {
            Findings = findings,
            Corruptions = findings.Count(f => f.Severity == CheckSeverity.Corruption),
            CheckErrors = findings.Count(f => f.Severity == CheckSeverity.CheckError),
        };
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!IsReadOnly)
            {
                foreach (VmdkExtent extent in _extents)
                {
                    if (extent is VmdkSparseExtent { CanAppendGrains: true })
                    {
                        await extent.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    }
                }
            }
        }
        finally
        {
            foreach (VmdkExtent extent in _extents)
            {
                extent.Dispose();
            }

            if (Backing is not null)
            {
                await Backing.DisposeAsync().ConfigureAwait(false);
            }

            HostFile.Dispose();
            _cidLock.Dispose();
            GC.SuppressFinalize(this);
        }
    }

    protected VmdkExtent Find(long position)
    {
        int index = Array.BinarySearch(_starts, position);
        return _extents[index >= 0 ? index : ~index - 1];
    }

    /// <summary>Reads what the parent holds at a virtual offset (zeros past its end or without a parent).</summary>
    protected ValueTask ReadBackingAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (Backing is not null && offsetBytes < Backing.SizeBytes)
        {
            CheckParentCid();
        }

        return BackingRead.ReadOrZeroAsync(Backing, offsetBytes, buffer, cancellationToken);
    }

    /// <summary>As VMware and QEMU: on the first write after open the disk gets a new content ID, so deltas made
    /// against the old content can tell that their parent changed.</summary>
    protected async ValueTask UpdateCidAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _cidUpdated))
        {
            return;
        }

        await _cidLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_cidUpdated)
            {
                return;
            }

            uint cid = BitConverter.ToUInt32(RandomNumberGenerator.GetBytes(sizeof(uint)));
            string text = ReplaceCid(_descriptorText, cid);
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            if (_descriptorPlace.IsWholeFile)
            {
                await HostFile.WriteAsync(0, bytes, cancellationToken).ConfigureAwait(false);
                HostFile.SetLength(bytes.Length);
            }
            else if (bytes.Length <= _descriptorPlace.CapacityBytes)
            {
                byte[] area = new byte[_descriptorPlace.CapacityBytes];
                bytes.CopyTo(area, 0);
                await HostFile.WriteAsync(_descriptorPlace.OffsetBytes, area, cancellationToken).ConfigureAwait(false);
            }

            _descriptorText = text;
            Cid = cid;
            Volatile.Write(ref _cidUpdated, true);
        }
        finally
        {
            _cidLock.Release();
        }
    }

    private static string ReplaceCid(string text, uint cid)
    {
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimStart().StartsWith("CID", StringComparison.Ordinal) && lines[i].Contains('=', StringComparison.Ordinal))
            {
                bool cr = lines[i].EndsWith('\r');
                lines[i] = string.Create(CultureInfo.InvariantCulture, $"CID={cid:x8}") + (cr ? "\r" : string.Empty);
                break;
            }
        }

        return string.Join('\n', lines);
    }

    private void CheckParentCid()
    {
        if (_parentChecked)
        {
            return;
        }

        if (Backing is VmdkImage parent && parent.Cid != Descriptor.ParentCid)
        {
            throw new BackingFileException(
                string.Create(CultureInfo.InvariantCulture, $"the parent's content ID {parent.Cid:x8} is not the parentCID {Descriptor.ParentCid:x8} this delta was made against: the parent changed"),
                HostFile.Path);
        }

        _parentChecked = true;
    }

    private void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > SizeBytes || (lengthBytes > 0 && offsetBytes >= SizeBytes))
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk of {SizeBytes} bytes");
        }
    }

    /// <summary>
    /// Refuses a write that touches a RDONLY or NOACCESS extent, or puts data other than zeros in a ZERO extent, before
    /// any byte of it is written (so a request spanning several extents is all or nothing).
    /// </summary>
    private void CheckExtentAccess(long offsetBytes, long lengthBytes, ReadOnlyMemory<byte>? data)
    {
        for (long done = 0; done < lengthBytes;)
        {
            long position = offsetBytes + done;
            VmdkExtent extent = Find(position);
            long local = position - extent.StartBytes;
            long piece = Math.Min(lengthBytes - done, extent.SizeBytes - local);
            if (extent is VmdkNoAccessExtent noAccess)
            {
                throw noAccess.Refused("written");
            }

            if (extent.Access == "RDONLY")
            {
                throw new UnsupportedFeatureException(
                    $"the extent covering [{extent.StartBytes}, {extent.StartBytes + extent.SizeBytes}) of the disk{(extent.FileName is { } name ? $" ('{name}')" : string.Empty)} is RDONLY: writes to it are refused",
                    HostFile.Path);
            }

            if (extent is VmdkZeroExtent && data is { } bytes && bytes.Span.Slice((int)done, (int)piece).ContainsAnyExcept((byte)0))
            {
                throw new UnsupportedFeatureException(
                    $"cannot write data to the ZERO extent covering [{extent.StartBytes}, {extent.StartBytes + extent.SizeBytes}) of the disk: it has no file and reads as zeros (only zeros may be written there)",
                    HostFile.Path);
            }

            done += piece;
        }
    }

    private void CheckWritable(long offsetBytes, long lengthBytes)
    {
        CheckRange(offsetBytes, lengthBytes);
        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }
    }
}

/// <summary>A streamOptimized image: grains are compressed, on all cores when convert -c drives it (ICompressedWrites).</summary>
internal sealed class VmdkStreamImage(IHostFile hostFile, VmdkDescriptor descriptor, string descriptorText, VmdkDescriptorPlace descriptorPlace, IReadOnlyList<VmdkExtent> extents, string createType, IImage? backing, bool readOnly)
    : VmdkImage(hostFile, descriptor, descriptorText, descriptorPlace, extents, createType, backing, readOnly), ICompressedWrites
{
    private VmdkSparseExtent Extent => (VmdkSparseExtent)Extents[0];

    public int CompressionUnitBytes => (int)Extent.GrainBytes;

    public int MaxCompressedBytes => VmdkDeflate.MaxCompressedBytes(CompressionUnitBytes);

    /// <summary>Every grain of a streamOptimized extent is stored compressed, even one that does not shrink.</summary>
    public int Compress(ReadOnlySpan<byte> unit, Span<byte> destination) => VmdkDeflate.Compress(unit, destination);

    public async ValueTask WriteCompressedAsync(long offsetBytes, ReadOnlyMemory<byte> compressed, bool isCompressed, CancellationToken cancellationToken = default)
    {
        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }

        await UpdateCidAsync(cancellationToken).ConfigureAwait(false);
        long grain = offsetBytes / CompressionUnitBytes;
        if (isCompressed)
        {
            await Extent.AppendCompressedGrainAsync(grain, compressed, cancellationToken).ConfigureAwait(false);
            return;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(MaxCompressedBytes);
        try
        {
            int length = VmdkDeflate.Compress(compressed.Span, buffer);
            await Extent.AppendCompressedGrainAsync(grain, buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
